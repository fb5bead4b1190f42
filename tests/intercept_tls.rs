//! TLS interception through the real proxy and the real curl: curl trusts
//! only Ferry's CA, the origin's certificate comes from its own test CA that
//! only the proxy trusts (`--upstream-ca`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

struct Setup {
    _scratch: tempfile::TempDir,
    ca_pem: String,
    proxy: Proxy,
}

fn setup(extra: &[&str]) -> Setup {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("ca");
    let init = std::process::Command::new(ferry())
        .args(["ca", "--ca-dir", dir.to_str().unwrap(), "init"])
        .output()
        .unwrap();
    assert!(init.status.success(), "{init:?}");
    let mut args = vec!["--intercept-tls", "--ca-dir", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    Setup {
        ca_pem: dir.join("ca.pem").to_str().unwrap().to_string(),
        proxy: proxy(&args),
        _scratch: scratch,
    }
}

/// Interception of `origin` (its port allowed for CONNECT), the proxy
/// trusting `origin_ca` upstream.
fn setup_trusting(origin: &Origin, origin_ca: &TestCa, extra: &[&str]) -> Setup {
    let port = origin.addr().port().to_string();
    let mut args = vec![
        "--upstream-ca",
        origin_ca.pem_path().to_str().unwrap(),
        "--connect-port",
        &port,
    ];
    args.extend_from_slice(extra);
    setup(&args)
}

/// curl through the proxy, trusting only Ferry's CA: the response head and
/// body, and curl's errors.
fn fetch(setup: &Setup, url: &str, http: &str) -> (String, String) {
    let out = curl(&[
        http,
        "--proxy",
        &setup.proxy.url(),
        "--cacert",
        &setup.ca_pem,
        "--include",
        url,
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (text, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    response.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn https_through_an_intercepted_tunnel_is_cached_over_http1_and_http2() {
    let origin_ca = TestCa::new();
    let origin = Origin::start_tls(&origin_ca, |req| {
        Reply::html(format!("secret page {}", req.path)).header("cache-control", "max-age=60")
    })
    .await;
    let setup = setup_trusting(&origin, &origin_ca, &[]);
    for (http, path) in [("--http1.1", "/one"), ("--http2", "/two")] {
        let url = origin.url(path);
        let (first, err) = fetch(&setup, &url, http);
        assert!(
            first.contains(&format!("secret page {path}")),
            "{first}\n{err}"
        );
        assert_eq!(header(&first, "x-cache"), Some("MISS"), "{first}");
        let (second, err) = fetch(&setup, &url, http);
        assert!(
            second.contains(&format!("secret page {path}")),
            "{second}\n{err}"
        );
        assert_eq!(header(&second, "x-cache"), Some("HIT"), "{http}: {second}");
        assert_eq!(origin.count(path), 1, "{http}");
        let version = if http == "--http2" {
            "HTTP/2 "
        } else {
            "HTTP/1.1 "
        };
        assert!(
            second.starts_with(version) || second.contains(&format!("\n{version}")),
            "{second}"
        );
    }
    // A Host naming another site inside the tunnel still reaches the
    // CONNECT's origin (the rules were asked about that one only).
    let out = curl(&[
        "--http1.1",
        "--proxy",
        &setup.proxy.url(),
        "--cacert",
        &setup.ca_pem,
        "-H",
        "Host: elsewhere.test",
        &origin.url("/three"),
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "secret page /three");
    assert_eq!(origin.count("/three"), 1);
    // What the client sees is Ferry's certificate, not the origin's.
    let origin_only = curl(&[
        "--proxy",
        &setup.proxy.url(),
        "--cacert",
        origin_ca.pem_path().to_str().unwrap(),
        &origin.url("/one"),
    ]);
    assert!(!origin_only.status.success(), "{origin_only:?}");
    // The access log names the https:// URLs.
    let log = setup.proxy.stdout();
    assert!(
        log.contains(&format!("GET {} ", origin.url("/one"))),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_origin_certificate_the_proxy_cannot_verify_is_a_502_naming_the_cause() {
    let ca = TestCa::new();
    let ca_file = ca.pem_path().to_str().unwrap();
    // (the origin's certificate, whether the proxy trusts its CA, the cause)
    let cases = [
        (ca.server_config(&["localhost"]), false, "unknown issuer"),
        (ca.server_config_with(&["localhost"], true), true, "expired"),
        (ca.server_config(&["elsewhere.test"]), true, "name mismatch"),
    ];
    for (config, trusted, cause) in cases {
        let origin = Origin::start_tls_with(config, |_| Reply::html("should not be seen")).await;
        let port = origin.addr().port().to_string();
        let mut args = vec!["--connect-port", &port];
        if trusted {
            args.extend(["--upstream-ca", ca_file]);
        }
        let setup = setup(&args);
        let (resp, err) = fetch(&setup, &origin.url("/x"), "--http1.1");
        assert!(resp.contains(" 502"), "{cause}: {resp}\n{err}");
        let named = header(&resp, "x-ferry-error").unwrap_or_default();
        assert!(named.contains(cause), "{cause}: {named}");
        assert!(!resp.contains("should not be seen"));
        assert_eq!(origin.count("/x"), 0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ip_address_origin_gets_an_ip_san() {
    let origin_ca = TestCa::new();
    let origin = Origin::start_tls(&origin_ca, |_| {
        Reply::html("by address").header("cache-control", "max-age=60")
    })
    .await;
    let setup = setup_trusting(&origin, &origin_ca, &[]);
    let url = format!("https://127.0.0.1:{}/ip", origin.addr().port());
    for expected in ["MISS", "HIT"] {
        let (resp, err) = fetch(&setup, &url, "--http2");
        assert!(resp.contains("by address"), "{resp}\n{err}");
        assert_eq!(header(&resp, "x-cache"), Some(expected), "{resp}");
    }
}

#[test]
fn without_a_ca_the_proxy_refuses_to_start_and_says_why() {
    let scratch = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(ferry())
        .args([
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--intercept-tls",
            "--ca-dir",
        ])
        .arg(scratch.path())
        .arg("--cache-dir")
        .arg(scratch.path().join("cache"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ferry ca init"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_excluded_site_passes_through_with_its_own_certificate() {
    let origin_ca = TestCa::new();
    let origin = Origin::start_tls(&origin_ca, |_| Reply::html("direct")).await;
    let port = origin.addr().port().to_string();
    let setup = setup(&["--connect-port", &port, "--no-intercept", "localhost"]);
    let through = |ca: &str| {
        curl(&[
            "--proxy",
            &setup.proxy.url(),
            "--cacert",
            ca,
            &origin.url("/p"),
        ])
    };
    // Only the origin's own CA verifies what the client now sees.
    let own = through(origin_ca.pem_path().to_str().unwrap());
    assert_eq!(String::from_utf8_lossy(&own.stdout), "direct", "{own:?}");
    let ferrys = through(&setup.ca_pem);
    assert!(!ferrys.status.success(), "{ferrys:?}");
    assert_eq!(origin.count("/p"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_keeps_refusing_the_certificate_is_passed_through_alone() {
    let origin_ca = TestCa::new();
    let origin = Origin::start_tls(&origin_ca, |_| Reply::html("direct")).await;
    let other = non_loopback_ipv4().to_string();
    let other_net = format!("{other}/32");
    let extra = [
        "--allow-client",
        "127.0.0.0/8",
        "--allow-client",
        &other_net,
        // The origin is on this host, which other clients may not reach
        // unless the network is opened for them.
        "--allow-network",
        "127.0.0.0/8",
    ];
    let setup = setup_trusting(&origin, &origin_ca, &extra);
    let via = |ca: &str, from: &str| {
        curl(&[
            "--interface",
            from,
            "--proxy",
            &setup.proxy.url(),
            "--cacert",
            ca,
            &origin.url("/p"),
        ])
    };
    let origin_pem = origin_ca.pem_path().to_str().unwrap();
    // A device without Ferry's CA: each handshake fails on the client side.
    for _ in 0..3 {
        assert!(!via(origin_pem, "127.0.0.1").status.success());
    }
    // Now that client's tunnels to this site pass through: it sees the
    // origin's own certificate.
    let passed = via(origin_pem, "127.0.0.1");
    assert_eq!(
        String::from_utf8_lossy(&passed.stdout),
        "direct",
        "{passed:?}"
    );
    // Another client is still intercepted.
    let other_client = via(&setup.ca_pem, &other);
    assert_eq!(
        String::from_utf8_lossy(&other_client.stdout),
        "direct",
        "{other_client:?}"
    );
    assert!(!via(origin_pem, &other).status.success());
    // The status page says so.
    let client = ProxyClient::new(setup.proxy.addr());
    let status = client.get(&format!("{}/", setup.proxy.url())).await.text();
    assert!(status.contains("Not intercepted for now"), "{status}");
    assert!(status.contains("localhost"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shared_cache_rules_hold_inside_the_tunnel() {
    let origin_ca = TestCa::new();
    let origin = Origin::start_tls(&origin_ca, |req| match req.path.as_str() {
        "/private" => Reply::html("yours only").header("cache-control", "private, max-age=60"),
        _ => Reply::html("shared page")
            .header("cache-control", "public, max-age=60")
            .header("set-cookie", "session=first-user"),
    })
    .await;
    let setup = setup_trusting(&origin, &origin_ca, &[]);
    for _ in 0..2 {
        let (resp, _) = fetch(&setup, &origin.url("/private"), "--http2");
        assert!(resp.contains("yours only"), "{resp}");
    }
    assert_eq!(
        origin.count("/private"),
        2,
        "a private response is never reused"
    );
    let (first, _) = fetch(&setup, &origin.url("/page"), "--http2");
    assert_eq!(header(&first, "set-cookie"), Some("session=first-user"));
    let (second, _) = fetch(&setup, &origin.url("/page"), "--http2");
    assert_eq!(header(&second, "x-cache"), Some("HIT"), "{second}");
    assert_eq!(
        header(&second, "set-cookie"),
        None,
        "one user's cookie for another"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_denied_site_is_refused_before_any_tls() {
    let origin_ca = TestCa::new();
    let origin = Origin::start_tls(&origin_ca, |_| Reply::html("never")).await;
    let port = origin.addr().port().to_string();
    let setup = setup(&["--connect-port", &port, "--deny-domain", "localhost"]);
    let (resp, err) = fetch(&setup, &origin.url("/x"), "--http1.1");
    // curl shows the proxy's answer to the CONNECT.
    assert!(resp.contains("403") || err.contains("403"), "{resp}\n{err}");
    assert_eq!(origin.count("/x"), 0);
}
