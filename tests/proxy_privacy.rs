//! Privacy and HTTP correctness: hop-by-hop headers stripped both ways, the
//! client's address never reaches the origin unless configured, `Via` by
//! pseudonym, and loops answered 508.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn hop_by_hop_headers_are_stripped_in_both_directions() {
    let origin = Origin::start(|_| {
        Reply::text("body")
            .header("connection", "X-Internal")
            .header("x-internal", "origin-only")
            .header("keep-alive", "timeout=5")
            .header("proxy-authenticate", "Basic realm=\"origin\"")
            .header("upgrade", "h2c")
            .header("trailer", "x-checksum")
            .header("x-end-to-end", "kept")
    })
    .await;
    let proxy = proxy(&["--no-cache"]);
    let resp = ProxyClient::new(proxy.addr())
        .get_with(
            &origin.url("/h"),
            &[
                ("connection", "keep-alive, X-Hop"),
                ("x-hop", "client-hop"),
                ("keep-alive", "timeout=5"),
                ("te", "trailers"),
                ("trailer", "x-foo"),
                ("upgrade", "websocket"),
                ("proxy-connection", "keep-alive"),
                ("proxy-authorization", "Basic dXNlcjpwYXNz"),
                ("x-end-to-end", "kept"),
            ],
        )
        .await;
    assert_eq!(resp.status, 200);
    for name in [
        "x-internal",
        "keep-alive",
        "proxy-authenticate",
        "upgrade",
        "trailer",
    ] {
        assert!(resp.header(name).is_none(), "{name} reached the client");
    }
    assert_eq!(resp.header("x-end-to-end"), Some("kept"));
    assert_eq!(resp.header("via"), Some("1.1 ferry"));

    let seen = &origin.requests()[0];
    for name in [
        "x-hop",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "proxy-connection",
        "proxy-authorization",
    ] {
        assert!(seen.header(name).is_none(), "{name} reached the origin");
    }
    assert_eq!(seen.header("x-end-to-end"), Some("kept"));
    assert_eq!(seen.header("via"), Some("1.1 ferry"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_origin_never_learns_the_client_address_unless_configured() {
    let origin = Origin::start(|_| Reply::text("ok")).await;
    let client_ip = "127.0.0.3";
    let proxy = proxy(&["--no-cache"]);
    ProxyClient::new(proxy.addr())
        .bind(client_ip.parse().unwrap())
        .get(&origin.url("/p"))
        .await;
    let seen = &origin.requests()[0];
    for (name, value) in &seen.headers {
        let value = value.to_str().unwrap_or_default();
        assert!(
            !value.contains(client_ip),
            "{name}: {value} leaks the client"
        );
    }
    assert!(seen.header("x-forwarded-for").is_none());
    assert!(seen.header("forwarded").is_none());
    let hostname = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let hostname = hostname.trim();
    if !hostname.is_empty() {
        assert!(!seen.header("via").unwrap().contains(hostname));
    }

    // Asked for, the address is sent in the configured header only.
    let telling = common::proxy(&["--no-cache", "--forwarded-header", "x-forwarded-for"]);
    ProxyClient::new(telling.addr())
        .bind(client_ip.parse().unwrap())
        .get(&origin.url("/q"))
        .await;
    let seen = &origin.requests()[1];
    assert_eq!(seen.header("x-forwarded-for"), Some(client_ip));
    assert!(seen.header("forwarded").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn loops_are_answered_508() {
    let origin = Origin::start(|_| Reply::text("ok")).await;
    let proxy = proxy(&["--no-cache", "--via-pseudonym", "edge-7"]);
    let client = ProxyClient::new(proxy.addr());

    // A request that already passed through this proxy.
    let resp = client
        .get_with(&origin.url("/"), &[("via", "1.1 other, 1.1 edge-7")])
        .await;
    assert_eq!(resp.status, 508);
    assert!(
        resp.header("x-ferry-error")
            .unwrap()
            .contains("request loop")
    );
    assert_eq!(origin.requests().len(), 0);

    // The proxy sent to itself under another name for its address: the second
    // pass carries our Via and is stopped there.
    let port = proxy.addr().port();
    let resp = client
        .get(&format!("http://[::ffff:127.0.0.1]:{port}/again"))
        .await;
    assert_eq!(resp.status, 508, "{}", resp.text());

    // The proxy's own address is its status page, not a loop.
    let resp = client.get(&format!("{}/", proxy.url())).await;
    assert_eq!(resp.status, 200);
    assert!(resp.text().contains("Ferry proxy"));
    let resp = client
        .get(&format!("http://localhost:{port}/healthz"))
        .await;
    assert_eq!(resp.text(), "ok\n");
}
