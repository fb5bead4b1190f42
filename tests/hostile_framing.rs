//! Hostile clients against upstream framing: whatever a client sends, the
//! bytes Ferry writes to an origin frame exactly the requests it meant to
//! send, so no client can slip a request of its own onto a pooled upstream
//! connection (request desync) and poison what other clients are served.
//!
//! The origin here is a raw socket that frames requests like a strict
//! server and keeps every byte ([`RawOrigin`]).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use http::Method;

const LIMIT: Duration = Duration::from_secs(30);

/// Answers every request with its own path, cacheable for a minute.
async fn echo_origin() -> RawOrigin {
    RawOrigin::start(|req| {
        RawReply::ok(format!("you asked for {}", req.path())).header("Cache-Control", "max-age=60")
    })
    .await
}

/// Every request the origin framed is one Ferry meant to send, and no
/// connection was left with bytes that are not a whole request.
/// (In any order: a background revalidation may overtake the next request.)
fn assert_clean_wire(origin: &RawOrigin, expected_paths: &[&str]) {
    let requests = origin.requests();
    let mut paths: Vec<&str> = requests.iter().map(|r| r.path()).collect();
    paths.sort_unstable();
    let mut expected = expected_paths.to_vec();
    expected.sort_unstable();
    assert_eq!(
        paths,
        expected,
        "the origin framed other requests than were sent; wire: {:#?}",
        origin.wire()
    );
    assert!(
        origin.leftovers().is_empty(),
        "unframed bytes on an upstream connection: {:?}",
        origin.leftovers()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_get_with_a_body_cannot_smuggle_a_request_onto_a_pooled_connection() {
    let origin = echo_origin().await;
    let proxy = proxy(&[]);
    let client = ProxyClient::new(proxy.addr());
    let smuggled = format!("GET /poison HTTP/1.1\r\nHost: {}\r\n\r\n", origin.addr());
    let first = tokio::time::timeout(
        LIMIT,
        client.send(Method::GET, &origin.url("/a"), &[], smuggled.clone()),
    )
    .await
    .expect("the GET with a body was answered");
    assert_eq!(first.status, 200);
    assert_eq!(first.text(), "you asked for /a");
    // Another client's request on what may be the same upstream connection.
    let second = tokio::time::timeout(LIMIT, client.get(&origin.url("/b")))
        .await
        .expect("the next request was answered");
    assert_eq!(second.text(), "you asked for /b");
    assert!(
        wait_until(LIMIT, || origin.requests().len() >= 2).await,
        "{:#?}",
        origin.wire()
    );
    assert_clean_wire(&origin, &["/a", "/b"]);
    let a = &origin.requests()[0];
    assert_eq!(
        a.body,
        smuggled.as_bytes(),
        "a GET with a body goes upstream with that body, framed"
    );
    // Nothing of the body was cached as if it were the plain GET's answer.
    let again = client.get(&origin.url("/a")).await;
    assert_eq!(again.text(), "you asked for /a");
    assert_eq!(
        again.header("x-cache"),
        Some("MISS"),
        "a GET with a body is not stored"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn framing_headers_upstream_describe_the_body_sent_on_every_path() {
    let origin = RawOrigin::start(|req| match req.path() {
        // Stale at once, with a validator: the next GET revalidates.
        "/stale" if req.header("if-none-match") == Some("\"v\"") => RawReply::ok("")
            .status(304)
            .header("ETag", "\"v\"")
            .header("Cache-Control", "max-age=0"),
        "/stale" => RawReply::ok("stale body")
            .header("ETag", "\"v\"")
            .header("Cache-Control", "max-age=0"),
        // Served stale while a background revalidation runs.
        "/swr" => RawReply::ok("swr body")
            .header("ETag", "\"s\"")
            .header("Cache-Control", "max-age=0, stale-while-revalidate=600"),
        path => RawReply::ok(format!("you asked for {path}")),
    })
    .await;
    let proxy = proxy(&[]);
    let client = ProxyClient::new(proxy.addr());
    // Client framing that must not travel: a zero Content-Length on a GET,
    // a Content-Length on a POST that a chunked body replaces.
    let cl0 = [("content-length", "0")];
    client
        .send(Method::GET, &origin.url("/miss"), &cl0, "")
        .await;
    client
        .send(Method::GET, &origin.url("/stale"), &cl0, "")
        .await;
    client
        .send(Method::GET, &origin.url("/stale"), &cl0, "")
        .await;
    client
        .send(Method::GET, &origin.url("/swr"), &cl0, "")
        .await;
    client
        .send(Method::GET, &origin.url("/swr"), &cl0, "")
        .await;
    let posted = client
        .send(Method::POST, &origin.url("/post"), &[], "form=1")
        .await;
    assert_eq!(posted.text(), "you asked for /post");
    let head = client
        .send(Method::HEAD, &origin.url("/head"), &cl0, "")
        .await;
    assert_eq!(head.status, 200);
    // miss, stale (fetch + revalidation), swr (fetch + background), post, head
    assert!(
        wait_until(LIMIT, || origin.requests().len() >= 7).await,
        "{:#?}",
        origin.wire()
    );
    assert_clean_wire(
        &origin,
        &[
            "/miss", "/stale", "/stale", "/swr", "/swr", "/post", "/head",
        ],
    );
    for req in origin.requests() {
        let declared = req
            .header("content-length")
            .map(|v| v.parse::<usize>().unwrap());
        let chunked = req
            .header("transfer-encoding")
            .is_some_and(|v| v.contains("chunked"));
        if req.method() == "POST" {
            assert!(
                declared == Some(req.body.len()) || chunked,
                "{req:?}: the POST's framing must describe its body"
            );
            assert_eq!(req.body, b"form=1");
        } else {
            assert!(
                declared.unwrap_or(0) == 0 && !chunked && req.body.is_empty(),
                "{req:?}: a body-less request carries no body framing"
            );
        }
    }
}
