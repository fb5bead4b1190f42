//! `ferry ca init | show | export`, driven as a user would: the real binary
//! on a scratch config directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::ferry;

fn ca(dir: &Path, args: &[&str]) -> Output {
    Command::new(ferry())
        .arg("ca")
        .arg("--ca-dir")
        .arg(dir)
        .args(args)
        .current_dir(dir.parent().unwrap())
        .output()
        .unwrap()
}

fn fingerprint(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("sha256:"))
        .unwrap_or_else(|| panic!("no fingerprint in {text}"));
    line.trim().to_string()
}

#[test]
fn init_show_export_and_no_silent_overwrite() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("config");
    let init = ca(&dir, &["init"]);
    assert!(init.status.success(), "{init:?}");
    let created = fingerprint(&init);
    assert_eq!(created.split(':').count(), 32, "{created}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = std::fs::metadata(dir.join("ca-key.pem")).unwrap();
        assert_eq!(key.permissions().mode() & 0o777, 0o600);
    }

    let again = ca(&dir, &["init"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    let show = ca(&dir, &["show"]);
    assert!(show.status.success());
    assert_eq!(fingerprint(&show), created, "the refused init kept the CA");
    assert!(String::from_utf8_lossy(&show.stdout).contains("expires:"));

    let export = ca(&dir, &["export", "--out", "exported"]);
    assert!(export.status.success(), "{export:?}");
    let pem = std::fs::read_to_string(scratch.path().join("exported.pem")).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(!pem.contains("PRIVATE KEY"));
    let der = std::fs::read(scratch.path().join("exported.der")).unwrap();
    assert_eq!(der.first(), Some(&0x30), "a DER SEQUENCE");

    let forced = ca(&dir, &["init", "--force"]);
    assert!(forced.status.success());
    assert_ne!(fingerprint(&forced), created);

    let empty = scratch.path().join("none");
    let missing = ca(&empty, &["show"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("ferry ca init"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_proxy_offers_the_certificate_at_slash_ca_and_never_the_key() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("config");
    let proxy = common::proxy(&["--ca-dir", dir.to_str().unwrap()]);
    let client = common::ProxyClient::new(proxy.addr());
    let base = proxy.url();
    let page = |path: &str| {
        let url = format!("{base}{path}");
        let client = &client;
        async move { client.get(&url).await }
    };

    // No CA yet: the page says how to make one, and there is nothing to download.
    let none = page("/ca").await;
    assert_eq!(none.status, 200);
    assert!(none.text().contains("ferry ca init"), "{}", none.text());
    assert_eq!(page("/ca/ferry-ca.pem").await.status, 404);

    // Made while the proxy runs: offered at once.
    let init = ca(&dir, &["init"]);
    assert!(init.status.success());
    let with_ca = page("/ca").await.text();
    assert!(with_ca.contains(&fingerprint(&init)), "{with_ca}");
    assert!(with_ca.contains("certutil"));
    let pem = page("/ca/ferry-ca.pem").await;
    assert_eq!(pem.status, 200);
    assert_eq!(
        pem.text(),
        std::fs::read_to_string(dir.join("ca.pem")).unwrap()
    );
    let der = page("/ca/ferry-ca.der").await;
    assert_eq!(
        der.header("content-type"),
        Some("application/x-x509-ca-cert")
    );
    assert_eq!(der.body.first(), Some(&0x30));
    for path in [
        "/ca/ca-key.pem",
        "/ca/../ca-key.pem",
        "/ca/%2e%2e/ca-key.pem",
        "/ca/ca.pem",
    ] {
        let resp = page(path).await;
        assert!(!resp.text().contains("PRIVATE KEY"), "{path}");
        assert_ne!(resp.status, 200, "{path}");
    }
}
