//! Glue shared by the integration tests: where the `ferry` binary is, and
//! small conveniences over the test kit.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub use ferry_testkit::*;

/// The `ferry` binary built for these tests.
pub fn ferry() -> &'static str {
    env!("CARGO_BIN_EXE_ferry")
}

/// Starts `ferry proxy` with `args`.
pub fn proxy(args: &[&str]) -> Proxy {
    Proxy::start(ferry(), args)
}

/// Runs the real `curl` with a clean proxy environment.
pub fn curl(args: &[&str]) -> std::process::Output {
    std::process::Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "30"])
        .args(args)
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .output()
        .expect("curl must be installed (see .ci/run)")
}
