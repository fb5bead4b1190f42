//! What upstream TLS trusts: the operating system's store by default (here
//! stood in for by `SSL_CERT_FILE`, which names the system store to OpenSSL
//! and to Ferry alike), the bundled roots or none on request, and the one
//! PEM bundle `ferry ca export --bundle` writes for clients that take a
//! single CA file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::*;

/// The system store for a child: `file` alone (this machine's environment
/// may name a certificate directory too, which would be read as well).
fn store_env(file: &str, empty_dir: &std::path::Path) -> Vec<(&'static str, String)> {
    vec![
        ("SSL_CERT_FILE", file.to_string()),
        ("SSL_CERT_DIR", empty_dir.to_str().unwrap().to_string()),
    ]
}

fn env_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn tls_origin(ca: &TestCa) -> Origin {
    Origin::start_tls(ca, |req| Reply::text(format!("secure {}", req.path))).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_system_store_is_trusted_by_default_and_can_be_set_aside() {
    let network_ca = TestCa::new();
    let origin = tls_origin(&network_ca).await;
    let store = network_ca.pem_path().to_str().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let env = store_env(store, empty.path());
    let url = origin.url("/x");

    let default = Proxy::start_with_env(ferry(), &[], &env_refs(&env));
    let resp = ProxyClient::new(default.addr()).get(&url).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.text(), "secure /x");

    let bundled = Proxy::start_with_env(ferry(), &["--upstream-roots", "bundled"], &env_refs(&env));
    let resp = ProxyClient::new(bundled.addr()).get(&url).await;
    assert_eq!(resp.status, 502);
    assert!(
        resp.header("x-ferry-error")
            .unwrap_or("")
            .contains("unknown issuer"),
        "{:?}",
        resp.header("x-ferry-error")
    );

    // Only the named file: the store is not consulted.
    let only_file = Proxy::start_with_env(
        ferry(),
        &["--upstream-roots", "none", "--upstream-ca", store],
        &env_refs(&store_env("/nonexistent.pem", empty.path())),
    );
    let resp = ProxyClient::new(only_file.addr()).get(&url).await;
    assert_eq!(resp.status, 200, "{}", resp.text());

    let out = Command::new(ferry())
        .args([
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--no-cache",
            "--upstream-roots",
            "none",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("trust no certificate authority"),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_bundle_lets_a_client_trust_both_the_sites_and_the_proxy() {
    let network_ca = TestCa::new();
    let origin = tls_origin(&network_ca).await;
    let store = network_ca.pem_path().to_str().unwrap().to_string();
    let scratch = tempfile::tempdir().unwrap();
    let env = store_env(&store, scratch.path());
    let ca_dir = scratch.path().join("ca");
    let ca_dir = ca_dir.to_str().unwrap();
    let init = Command::new(ferry())
        .args(["ca", "--ca-dir", ca_dir, "init"])
        .output()
        .unwrap();
    assert!(init.status.success(), "{init:?}");
    let bundle = scratch.path().join("bundle.pem");
    let export = Command::new(ferry())
        .args(["ca", "--ca-dir", ca_dir, "export", "--bundle"])
        .arg(&bundle)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    assert!(export.status.success(), "{export:?}");
    let text = std::fs::read_to_string(&bundle).unwrap();
    assert_eq!(
        text.matches("-----BEGIN CERTIFICATE-----").count(),
        2,
        "{text}"
    );

    let port = origin.addr().port().to_string();
    let proxy = Proxy::start_with_env(
        ferry(),
        &[
            "--intercept-tls",
            "--ca-dir",
            ca_dir,
            "--connect-port",
            &port,
        ],
        &env_refs(&env),
    );
    let bundle = bundle.to_str().unwrap();
    let url = origin.url("/through");
    // Through the intercepting proxy (its leaf) and straight to the site
    // (the site's own certificate): the one file covers both.
    let via_proxy = curl(&["--proxy", &proxy.url(), "--cacert", bundle, &url]);
    assert_eq!(
        String::from_utf8_lossy(&via_proxy.stdout),
        "secure /through",
        "{via_proxy:?}"
    );
    let direct = curl(&["--noproxy", "*", "--cacert", bundle, &url]);
    assert_eq!(
        String::from_utf8_lossy(&direct.stdout),
        "secure /through",
        "{direct:?}"
    );
}
