//! Glue shared by the integration tests: where the `ferry` binary is, and
//! small conveniences over the test kit.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

mod env;
mod get;

use std::path::Path;
use std::process::{Command, Stdio};

pub use env::*;
pub use ferry_testkit::*;
// Not every test binary runs `ferry get`.
#[allow(unused_imports)]
pub use get::*;

/// The `ferry` binary built for these tests, or the one `FERRY_TEST_BIN`
/// names: that runs a test against another build, e.g. to show that a
/// hostile-input test fails on an older version.
pub fn ferry() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("FERRY_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_ferry").into())
    })
}

/// This machine's first non-loopback IPv4 address: tests that need a client
/// the proxy does not see as loopback connect from it. Fails loudly when the
/// machine has none (the test cannot mean anything then).
pub fn non_loopback_ipv4() -> std::net::Ipv4Addr {
    let text = std::fs::read_to_string("/proc/net/fib_trie").unwrap_or_default();
    // Local addresses are the entries followed by "/32 host LOCAL".
    let mut last: Option<std::net::Ipv4Addr> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("|-- ") {
            last = rest.parse().ok();
        } else if line.contains("/32 host LOCAL") {
            if let Some(ip) = last.filter(|ip| !ip.is_loopback()) {
                return ip;
            }
        }
    }
    panic!(
        "this test needs a non-loopback IPv4 address on this machine (none in /proc/net/fib_trie)"
    )
}

/// The system's Chromium (scripts/test.sh installs it).
pub fn chromium() -> &'static str {
    for candidate in [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ] {
        if Path::new(candidate).exists() {
            return candidate;
        }
    }
    panic!("Chromium is required for this test (scripts/test.sh installs it)");
}

/// Starts `ferry proxy` with `args`.
pub fn proxy(args: &[&str]) -> Proxy {
    Proxy::start(ferry(), args)
}

/// Runs the real `curl` with a clean proxy environment.
pub fn curl(args: &[&str]) -> std::process::Output {
    Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "30"])
        .args(args)
        .clear_proxy_env()
        .output()
        .expect("curl must be installed (see .ci/run)")
}

/// The hash `ferry hash-password` makes of `password`, for `--auth-user NAME:HASH`.
pub fn hash_password(password: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(ferry())
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Runs `ferry cache ARGS... --cache-dir DIR`: (success, stdout, stderr).
pub fn cache_cmd(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(ferry())
        .arg("cache")
        .args(args)
        .arg("--cache-dir")
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Whether the proxy answered from its cache.
pub fn cached(resp: &TestResponse) -> bool {
    resp.header("x-cache") == Some("HIT")
}

/// The names in `dir`, sorted, temporary files included; none if `dir` does
/// not exist.
pub fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

/// A small HTML page with `title` as its title (and text).
pub fn page(title: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head><title>{title}</title></head><body><p>{title}</p></body></html>"
    )
}
