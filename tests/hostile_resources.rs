//! One client must not exhaust what everybody shares: connections (in all
//! and per client), password checks, and the upstream connection pool.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread")]
async fn a_client_outside_the_allow_list_is_refused_without_its_request_being_read() {
    let proxy = proxy(&["--allow-client", "127.0.0.1/32", "--header-timeout", "30"]);
    // A request head that never ends: the proxy must not wait for it.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut stream = socket.connect(proxy.addr()).await.unwrap();
    stream
        .write_all(b"GET http://example.test/ HTTP/1.1\r\nHost: exa")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        use tokio::io::AsyncReadExt;
        let _ = stream.read_to_end(&mut answer).await;
    })
    .await;
    assert!(
        read.is_ok(),
        "the refused client was kept waiting for its request"
    );
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 403"), "{text}");
    assert!(text.contains("not in allow-client"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_client_cannot_take_every_connection() {
    let origin = Origin::start(|_| Reply::text("ok")).await;
    let proxy = proxy(&[
        "--allow-client",
        "127.0.0.0/8",
        "--max-connections-per-client",
        "4",
        "--no-cache",
    ]);
    // The greedy client holds its four, idle.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(proxy.addr()).await.unwrap());
    }
    // Accepted in order: the next connection comes after these four.
    let (answer, closed) = raw_exchange(
        proxy.addr(),
        format!("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", origin.url("/")).as_bytes(),
        Duration::from_secs(10),
    )
    .await;
    let text = String::from_utf8_lossy(&answer);
    assert!(closed, "{text}");
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("max-connections-per-client"), "{text}");
    // Another client is still served.
    let other = ProxyClient::new(proxy.addr())
        .bind("127.0.0.2".parse().unwrap())
        .get(&origin.url("/"))
        .await;
    assert_eq!(other.status, 200);
    drop(held);
}

#[tokio::test(flavor = "multi_thread")]
async fn guessing_passwords_is_slowed_down_for_the_guesser_only() {
    let origin = Origin::start(|_| Reply::text("members only")).await;
    let user = format!("alice:{}", hash_password("s3cret"));
    let proxy = proxy(&[
        "--allow-client",
        "127.0.0.0/8",
        "--auth-user",
        &user,
        "--no-cache",
    ]);
    let basic = |pass: &str| {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("alice:{pass}"))
        )
    };
    let guesser = ProxyClient::new(proxy.addr());
    for guess in ["a", "b", "c", "d", "e", "f"] {
        let resp = guesser
            .get_with(&origin.url("/"), &[("proxy-authorization", &basic(guess))])
            .await;
        assert_eq!(resp.status, 407);
    }
    let right = guesser
        .get_with(
            &origin.url("/"),
            &[("proxy-authorization", &basic("s3cret"))],
        )
        .await;
    assert_eq!(
        right.status, 407,
        "the guesser must wait even with the right password"
    );
    assert!(
        right
            .header("x-ferry-error")
            .unwrap_or("")
            .contains("too many failed logins"),
        "{:?}",
        right.headers
    );
    let alice = ProxyClient::new(proxy.addr())
        .bind("127.0.0.2".parse().unwrap())
        .get_with(
            &origin.url("/"),
            &[("proxy-authorization", &basic("s3cret"))],
        )
        .await;
    assert_eq!(alice.status, 200, "others are not slowed down");
}

#[tokio::test(flavor = "multi_thread")]
async fn reusable_upstream_connections_are_bounded_for_all_origins_together() {
    let mut origins = Vec::new();
    for _ in 0..6 {
        origins.push(Origin::start(|_| Reply::text("ok")).await);
    }
    let proxy = proxy(&["--max-pooled-upstream", "2", "--no-cache"]);
    let client = ProxyClient::new(proxy.addr());
    for origin in &origins {
        assert_eq!(client.get(&origin.url("/")).await.status, 200);
    }
    let pooled = proxy.metric("ferry_upstream_pooled").unwrap();
    assert!(pooled <= 2, "{pooled} reusable upstream connections");
    // Connections beyond the bound were closed after their exchange.
    for origin in &origins {
        assert_eq!(client.get(&origin.url("/")).await.status, 200);
    }
    assert!(proxy.metric("ferry_upstream_pooled").unwrap() <= 2);
}
