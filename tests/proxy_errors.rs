//! Failures and timeouts: upstream DNS failure, refused connection, slow
//! origins, malformed and oversized requests, slow clients, and graceful
//! shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn upstream_failures_are_pages_naming_the_cause() {
    let proxy = proxy(&["--no-cache"]);
    let client = ProxyClient::new(proxy.addr());

    let resp = client.get("http://no-such-host.invalid/page").await;
    assert_eq!(resp.status, 502);
    let cause = resp.header("x-ferry-error").unwrap();
    assert!(
        cause.starts_with("DNS lookup failed for no-such-host.invalid"),
        "{cause}"
    );
    assert!(resp.text().contains("http://no-such-host.invalid/page"));
    assert!(resp.text().contains("502 Bad Gateway"));

    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let resp = client.get(&format!("http://127.0.0.1:{port}/")).await;
    assert_eq!(resp.status, 502);
    assert_eq!(
        resp.header("x-ferry-error"),
        Some(format!("connection refused by 127.0.0.1:{port}").as_str())
    );

    let resp = client.get("ftp://example.test/file").await;
    assert_eq!(resp.status, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_origins_time_out_with_504() {
    let origin = Origin::start(|req| match req.path.as_str() {
        "/slow-head" => Reply::text("late").delay(Duration::from_secs(4)),
        _ => Reply::new(200)
            .pattern(1024 * 1024)
            .chunk_delay(Duration::from_secs(4)),
    })
    .await;
    let proxy = proxy(&["--no-cache", "--response-timeout", "1"]);
    let client = ProxyClient::new(proxy.addr());
    let resp = client.get(&origin.url("/slow-head")).await;
    assert_eq!(resp.status, 504);
    assert!(
        resp.header("x-ferry-error")
            .unwrap()
            .contains("sent no response headers within 1 s")
    );

    // A body that stalls is cut off: the client sees a broken transfer, never a
    // short body passed off as complete.
    let result = client
        .try_send(http::Method::GET, &origin.url("/slow-body"), &[], "")
        .await;
    assert!(
        result.is_err(),
        "a stalled body must not end cleanly: {result:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_and_oversized_requests_are_refused() {
    let proxy = proxy(&["--no-cache"]);
    let (reply, closed) = raw_exchange(
        proxy.addr(),
        b"THIS IS NOT HTTP\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert!(closed);

    let big = format!(
        "GET http://example.test/ HTTP/1.1\r\nHost: example.test\r\nX-Big: {}\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    let (reply, closed) = raw_exchange(proxy.addr(), big.as_bytes(), Duration::from_secs(5)).await;
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 431"), "{reply}");
    assert!(closed);

    // The proxy is still fine.
    let resp = ProxyClient::new(proxy.addr())
        .get(&format!("{}/healthz", proxy.url()))
        .await;
    assert_eq!(resp.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_sending_headers_too_slowly_is_cut_off_while_others_are_served() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let origin = Origin::start(|_| Reply::text("fast")).await;
    let proxy = proxy(&["--no-cache", "--header-timeout", "1"]);

    let mut slow = tokio::net::TcpStream::connect(proxy.addr()).await.unwrap();
    slow.write_all(b"GET http://127.0.0.1/ HTTP/1.1\r\n")
        .await
        .unwrap();
    // Keep dribbling header bytes; the deadline is for the whole head.
    let dribble = tokio::spawn(async move {
        let mut buf = [0u8; 1024];
        for _ in 0..50 {
            if slow.write_all(b"X-Slow: 1\r\n").await.is_err() {
                return true;
            }
            match tokio::time::timeout(Duration::from_millis(200), slow.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                _ => {}
            }
        }
        false
    });

    // Meanwhile other clients are served normally.
    let client = ProxyClient::new(proxy.addr());
    for _ in 0..5 {
        assert_eq!(client.get(&origin.url("/")).await.text(), "fast");
    }
    assert!(dribble.await.unwrap(), "the slow client was never cut off");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_in_flight_requests_then_exits_zero() {
    let gate = Gate::new();
    let origin = {
        let gate = gate.clone();
        Origin::start(move |_| Reply::text("finished").gate(&gate)).await
    };
    let mut proxy = proxy(&["--no-cache"]);
    let client = ProxyClient::new(proxy.addr());
    let in_flight = {
        let (client, url) = (client.clone(), origin.url("/long"));
        tokio::spawn(async move { client.get(&url).await })
    };
    assert!(wait_until(Duration::from_secs(10), || origin.requests().len() == 1).await);

    proxy.signal(libc::SIGTERM);
    assert!(
        wait_until(Duration::from_secs(10), || proxy
            .stderr()
            .contains("shutting down"))
        .await
    );
    // New connections are no longer accepted.
    assert!(
        wait_until(Duration::from_secs(10), || std::net::TcpStream::connect(
            proxy.addr()
        )
        .is_err())
        .await
    );
    gate.open();
    let resp = in_flight.await.unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "finished");
    let status = proxy
        .wait_exit(Duration::from_secs(20))
        .expect("proxy exited");
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_stops_reading_does_not_hold_a_fetch_slot_forever() {
    use tokio::io::AsyncWriteExt;
    let origin = Origin::start(|req| match req.path.as_str() {
        "/huge" => Reply::new(200).pattern(256 * 1024 * 1024),
        _ => Reply::text("next"),
    })
    .await;
    let proxy = proxy(&[
        "--no-cache",
        "--max-concurrent",
        "1",
        "--response-timeout",
        "1",
    ]);
    let mut stuck = tokio::net::TcpStream::connect(proxy.addr()).await.unwrap();
    let req = format!("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", origin.url("/huge"));
    stuck.write_all(req.as_bytes()).await.unwrap();
    assert!(wait_until(Duration::from_secs(10), || origin.count("/huge") == 1).await);
    // `stuck` never reads; its slot must come free so the next request runs.
    let resp = ProxyClient::new(proxy.addr())
        .get(&origin.url("/next"))
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.text(), "next");
    drop(stuck);
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_keep_alive_connections_are_closed_after_the_header_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let origin = Origin::start(|_| Reply::text("ok")).await;
    let proxy = proxy(&["--no-cache", "--header-timeout", "1"]);

    let mut conn = tokio::net::TcpStream::connect(proxy.addr()).await.unwrap();
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        origin.url("/")
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    // Read the whole response: it ends with the two-byte body "ok".
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.ends_with(b"\r\n\r\nok") {
        let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf))
            .await
            .expect("response within 10 s")
            .unwrap();
        assert!(n > 0, "closed before the response ended");
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"));

    // Kept alive, then idle: the proxy closes it once the header timeout passes.
    let closed = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the idle connection was not closed: {closed:?}"
    );
}
