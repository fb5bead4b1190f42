//! Forwarding through the real `ferry proxy`: curl GET and POST, streamed
//! request bodies, HTTPS in absolute form (TLS by the proxy, HTTP/2 by ALPN),
//! and CONNECT tunnels to a TLS origin signed by a test CA.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use http::Method;

#[tokio::test(flavor = "multi_thread")]
async fn curl_get_and_post_through_the_proxy() {
    let origin = Origin::start(|req| match req.method.as_str() {
        "POST" => Reply::text(format!(
            "got {} bytes: {}",
            req.body.len(),
            String::from_utf8_lossy(&req.body)
        )),
        _ => Reply::html("<title>Hello</title><p>hello from the origin</p>"),
    })
    .await;
    let proxy = proxy(&["--no-cache"]);

    let out = curl(&["-x", &proxy.url(), &origin.url("/page")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "<title>Hello</title><p>hello from the origin</p>"
    );

    let out = curl(&[
        "-x",
        &proxy.url(),
        "--data-binary",
        "name=ferry&x=1",
        &origin.url("/form"),
    ]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "got 14 bytes: name=ferry&x=1"
    );
    let post = &origin.requests()[1];
    assert_eq!(post.method, "POST");
    assert_eq!(post.path, "/form");
    assert_eq!(post.header("content-length"), Some("14"));

    let log = proxy.wait_stdout_lines(2, std::time::Duration::from_secs(5));
    assert!(
        log[0].contains(&format!("\"GET {} HTTP/1.1\" 200 48 ", origin.url("/page"))),
        "{log:?}"
    );
    assert!(log[1].contains("\"POST "), "{log:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn chunked_request_bodies_stream_upstream() {
    let origin = Origin::start(|req| Reply::text(format!("{}", req.body.len()))).await;
    let proxy = proxy(&["--no-cache"]);
    // 3 MiB sent with chunked transfer coding by curl (-H "Transfer-Encoding: chunked").
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("upload.bin");
    std::fs::write(&file, pattern_bytes(0, 3 * 1024 * 1024)).unwrap();
    let out = curl(&[
        "-x",
        &proxy.url(),
        "-H",
        "Transfer-Encoding: chunked",
        "-T",
        file.to_str().unwrap(),
        &origin.url("/upload"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        (3 * 1024 * 1024).to_string()
    );
    let put = &origin.requests()[0];
    assert_eq!(put.method, "PUT");
    assert_eq!(
        put.body.as_ref(),
        pattern_bytes(0, 3 * 1024 * 1024).as_slice()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn https_absolute_form_is_fetched_over_tls_with_http2() {
    let ca = TestCa::new();
    let origin = Origin::start_tls(&ca, |_| Reply::html("secure page")).await;
    let proxy = proxy(&[
        "--no-cache",
        "--upstream-ca",
        ca.pem_path().to_str().unwrap(),
    ]);
    let resp = ProxyClient::new(proxy.addr()).get(&origin.url("/s")).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.text(), "secure page");
    let seen = &origin.requests()[0];
    assert_eq!(seen.version, http::Version::HTTP_2, "ALPN should pick h2");
    assert_eq!(resp.header("via"), Some("2 ferry"));

    // The same origin without the test CA is refused as a TLS failure, by name.
    let strict = common::proxy(&["--no-cache"]);
    let resp = ProxyClient::new(strict.addr()).get(&origin.url("/s")).await;
    assert_eq!(resp.status, 502);
    let cause = resp.header("x-ferry-error").unwrap();
    assert!(cause.starts_with("TLS handshake with localhost"), "{cause}");
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_tunnels_reach_allowed_ports_only() {
    let ca = TestCa::new();
    let origin = Origin::start_tls(&ca, |_| Reply::html("through the tunnel")).await;
    let port = origin.addr().port().to_string();
    let proxy = proxy(&["--no-cache", "--connect-port", &port]);

    // curl uses CONNECT for https:// URLs through an http proxy.
    let out = curl(&[
        "-x",
        &proxy.url(),
        "--cacert",
        ca.pem_path().to_str().unwrap(),
        &origin.url("/t"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "through the tunnel");
    let log = proxy.wait_stdout_lines(1, std::time::Duration::from_secs(5));
    assert!(
        log[0].contains(&format!("\"CONNECT localhost:{port} HTTP/1.1\" 200 ")),
        "{log:?}"
    );

    // The default allows only 443.
    let strict = common::proxy(&["--no-cache"]);
    let resp = ProxyClient::new(strict.addr())
        .send(Method::CONNECT, &format!("localhost:{port}"), &[], "")
        .await;
    assert_eq!(resp.status, 403);
    assert!(
        resp.text()
            .contains(&format!("CONNECT to port {port} is not allowed"))
    );
}

/// Origins close idle connections on their own clock (Node and Apache after
/// 5 s), and one can close just as the proxy reuses the connection. An
/// idempotent request with a small body is then sent once more on a new
/// connection; a POST, or a body too large to hold, is not repeated: it
/// could have had its effect, and the client hears of the failure.
#[tokio::test(flavor = "multi_thread")]
async fn an_idempotent_request_is_repeated_when_its_pooled_connection_was_closed() {
    use std::collections::HashMap;
    use std::sync::Mutex;
    // Each connection answers its first request and resets on its second.
    let seen: Mutex<HashMap<usize, usize>> = Mutex::default();
    let origin = RawOrigin::start(move |req| {
        let mut seen = seen.lock().unwrap();
        let n = seen.entry(req.conn).or_default();
        *n += 1;
        if *n == 1 {
            RawReply::ok(format!("{} {}", req.method(), req.body.len()))
        } else {
            RawReply::hang_up()
        }
    })
    .await;
    let proxy = proxy(&["--no-cache"]);
    let client = ProxyClient::new(proxy.addr());
    let settle = std::time::Duration::from_millis(200);

    // A connection in the pool, then a PUT that meets its reset.
    assert_eq!(client.get(&origin.url("/warm")).await.status, 200);
    tokio::time::sleep(settle).await;
    let put = client
        .send(Method::PUT, &origin.url("/doc"), &[], "config")
        .await;
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(put.text(), "PUT 6");
    let puts: Vec<_> = origin
        .requests()
        .into_iter()
        .filter(|r| r.method() == "PUT")
        .collect();
    assert_eq!(
        puts.len(),
        2,
        "the PUT met the closed pooled connection and went again: {puts:?}"
    );
    assert!(puts.iter().all(|r| r.body == b"config"));
    assert_ne!(puts[0].conn, puts[1].conn);

    // A POST on the connection the PUT left pooled: not repeated.
    tokio::time::sleep(settle).await;
    let post = client
        .send(Method::POST, &origin.url("/form"), &[], "order=1")
        .await;
    assert_eq!(post.status, 502, "{}", post.text());
    let posts = origin
        .requests()
        .iter()
        .filter(|r| r.method() == "POST")
        .count();
    assert_eq!(posts, 1, "a POST must never be sent twice");

    // A PUT whose body is past what the proxy holds streams, and is not repeated.
    assert_eq!(client.get(&origin.url("/warm-again")).await.status, 200);
    tokio::time::sleep(settle).await;
    let big = vec![b'x'; 100 * 1024];
    let put = client
        .send(Method::PUT, &origin.url("/big"), &[], big)
        .await;
    assert_eq!(put.status, 502, "{}", put.text());
    let big_puts = origin
        .requests()
        .iter()
        .filter(|r| r.path() == "/big")
        .count();
    assert_eq!(big_puts, 1);
}

/// Plain-HTTP origins are reached over connections the proxy keeps for
/// reuse. A response that brings more bytes than its length says (an origin
/// trying to answer a request not yet sent) must not be taken as the answer
/// to the next request on that connection: the connection is dropped, and
/// the next request is answered on a new one. Well-behaved exchanges reuse
/// one connection.
#[tokio::test(flavor = "multi_thread")]
async fn an_origin_cannot_answer_in_advance_on_a_reused_connection() {
    let origin = RawOrigin::start(|req| match req.path() {
        "/inject" => RawReply::ok("first").then_send(
            "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nCache-Control: max-age=600\r\n\r\nforged",
        ),
        path => RawReply::ok(format!("real {path}")),
    })
    .await;
    let proxy = proxy(&["--no-cache"]);
    let client = ProxyClient::new(proxy.addr());
    let settle = std::time::Duration::from_millis(100);

    // Three plain exchanges in turn: one connection.
    for n in 0..3 {
        let resp = client.get(&origin.url(&format!("/plain{n}"))).await;
        assert_eq!(resp.text(), format!("real /plain{n}"));
        tokio::time::sleep(settle).await;
    }
    let conns: std::collections::HashSet<_> = origin.requests().iter().map(|r| r.conn).collect();
    assert_eq!(conns.len(), 1, "sequential requests reuse the connection");

    let resp = client.get(&origin.url("/inject")).await;
    assert_eq!(resp.text(), "first");
    tokio::time::sleep(settle).await;
    for n in 0..3 {
        let resp = client.get(&origin.url(&format!("/after{n}"))).await;
        assert_eq!(resp.status, 200);
        assert_eq!(
            resp.text(),
            format!("real /after{n}"),
            "an injected answer was served"
        );
    }
    let requests = origin.requests();
    let inject_conn = requests
        .iter()
        .find(|r| r.path() == "/inject")
        .unwrap()
        .conn;
    assert!(
        requests
            .iter()
            .filter(|r| r.path().starts_with("/after"))
            .all(|r| r.conn != inject_conn),
        "the connection that sent unasked bytes was used again"
    );
}
