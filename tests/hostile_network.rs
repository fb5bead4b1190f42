//! Destinations the organisation walls off stay walled off: network rules
//! are checked on the addresses a name resolves to, an address is the same
//! address however it is spelled, cloud metadata (link-local) is refused by
//! default, and this host's own addresses are for clients on this host. A
//! refusal is a 403 naming the rule, and no connection is opened.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use http::Method;

const LIMIT: Duration = Duration::from_secs(30);

fn ok_origin() -> impl Fn(&RawRequest) -> RawReply {
    |_| RawReply::ok("inside")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_spelling_of_a_denied_address_is_refused_without_a_connection() {
    let origin = RawOrigin::start(ok_origin()).await;
    let port = origin.addr().port();
    let port_text = port.to_string();
    let proxy = proxy(&[
        "--deny-network",
        "127.0.0.0/8",
        "--deny-network",
        "::1/128",
        "--connect-port",
        &port_text,
    ]);
    let client = ProxyClient::new(proxy.addr());
    for host in [
        "localhost",
        "127.0.0.1",
        "2130706433",
        "0x7f000001",
        "0177.0.0.1",
        "127.1",
        "[::ffff:127.0.0.1]",
        "[::1]",
    ] {
        let url = format!("http://{host}:{port}/secret");
        let resp = tokio::time::timeout(LIMIT, client.get(&url)).await.unwrap();
        assert_eq!(resp.status, 403, "{url}: {}", resp.text());
        let cause = resp.header("x-ferry-error").unwrap_or("");
        assert!(cause.contains("deny-network"), "{url}: {cause}");
    }
    let tunnel = client
        .send(Method::CONNECT, &format!("localhost:{port}"), &[], "")
        .await;
    assert_eq!(tunnel.status, 403, "CONNECT: {}", tunnel.text());
    assert!(
        origin.wire().is_empty(),
        "a refused destination was connected to: {:?}",
        origin.wire()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cloud_metadata_is_refused_by_default() {
    let proxy = proxy(&[]);
    let client = ProxyClient::new(proxy.addr());
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://0xa9fea9fe/latest/meta-data/",
        "http://169.254.43518/",
        "http://[fe80::1]/",
    ] {
        let resp = tokio::time::timeout(LIMIT, client.get(url))
            .await
            .expect("refused at once, without trying to connect");
        assert_eq!(resp.status, 403, "{url}: {}", resp.text());
        assert!(
            resp.header("x-ferry-error")
                .unwrap_or("")
                .contains("link-local"),
            "{url}: {:?}",
            resp.headers
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn this_host_is_only_for_clients_on_this_host() {
    let ip = non_loopback_ipv4();
    let origin = RawOrigin::start(ok_origin()).await;
    let port = origin.addr().port();
    let port_text = port.to_string();
    let listen = format!("{ip}:0");
    let allow = format!("{ip}/32");
    let remote_args = [
        "--listen",
        &listen,
        "--allow-client",
        &allow,
        "--connect-port",
        &port_text,
    ];
    let proxy = proxy(&remote_args);
    // The client connects from a non-loopback address of this machine.
    let client = ProxyClient::new(proxy.addr());
    for url in [
        format!("http://127.0.0.1:{port}/admin"),
        format!("http://localhost:{port}/admin"),
        format!("http://{ip}:{port}/admin"),
        format!("http://0.0.0.0:{port}/admin"),
    ] {
        let resp = client.get(&url).await;
        assert_eq!(resp.status, 403, "{url}: {}", resp.text());
        assert!(
            resp.header("x-ferry-error")
                .unwrap_or("")
                .contains("own host"),
            "{url}: {:?}",
            resp.headers
        );
    }
    let tunnel = client
        .send(Method::CONNECT, &format!("127.0.0.1:{port}"), &[], "")
        .await;
    assert_eq!(tunnel.status, 403);
    assert!(origin.wire().is_empty(), "{:?}", origin.wire());

    // An explicit allow-network opens it.
    let mut opened: Vec<&str> = remote_args.to_vec();
    opened.extend(["--allow-network", "127.0.0.1/32"]);
    let proxy = common::proxy(&opened);
    let client = ProxyClient::new(proxy.addr());
    let resp = client.get(&format!("http://127.0.0.1:{port}/admin")).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.text(), "inside");
}
