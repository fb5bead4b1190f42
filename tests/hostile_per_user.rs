//! One user's data never reaches another user through the shared cache: a
//! user's own headers (`Set-Cookie` and the like) go back to that user only
//! and are never stored, a refresh that forbids storing removes the stored
//! copy, and only admin clients may purge.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use http::Method;

/// The URLs `ferry cache ls` lists for the proxy's cache directory.
fn stored_urls(proxy: &Proxy) -> Vec<String> {
    let (ok, out, err) = cache_cmd(proxy.cache_dir().unwrap(), &["ls", "--json"]);
    assert!(ok, "{err}");
    out.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["url"].as_str().unwrap().to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_cookie_from_a_revalidation_never_reaches_another_user() {
    let origin = Origin::start(|req| {
        if req.header("if-none-match") == Some("\"v1\"") {
            // The origin hands the user whose request it saw a session.
            Reply::new(304)
                .header("etag", "\"v1\"")
                .header("cache-control", "max-age=60")
                .header("set-cookie", "session=alice-secret")
        } else {
            Reply::text("shared page")
                .header("etag", "\"v1\"")
                .header("cache-control", "max-age=0")
        }
    })
    .await;
    let proxy = proxy(&[]);
    let client = ProxyClient::new(proxy.addr());
    let url = origin.url("/page");
    client.get(&url).await;
    let alice = client.get_with(&url, &[("cookie", "who=alice")]).await;
    assert_eq!(alice.text(), "shared page");
    assert_eq!(
        alice.header("set-cookie"),
        Some("session=alice-secret"),
        "the user whose request was revalidated gets the 304's cookie"
    );
    let bob = client.get_with(&url, &[("cookie", "who=bob")]).await;
    assert!(cached(&bob), "{:?}", bob.headers);
    assert_eq!(bob.text(), "shared page");
    assert_eq!(
        bob.header("set-cookie"),
        None,
        "another user must never receive alice's session"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_public_response_that_sets_a_cookie_is_stored_without_it() {
    let origin = Origin::start(|_| {
        Reply::text("public page")
            .header("cache-control", "public, max-age=60")
            .header("set-cookie", "tracking=first-visitor")
            .header("authentication-info", "nextnonce=\"first\"")
    })
    .await;
    let proxy = proxy(&[]);
    let client = ProxyClient::new(proxy.addr());
    let url = origin.url("/public");
    let first = client.get(&url).await;
    assert_eq!(first.header("set-cookie"), Some("tracking=first-visitor"));
    let second = client.get(&url).await;
    assert!(cached(&second), "{:?}", second.headers);
    assert_eq!(second.text(), "public page");
    assert_eq!(second.header("set-cookie"), None);
    assert_eq!(second.header("authentication-info"), None);
    let files = std::fs::read_dir(proxy.cache_dir().unwrap().join("objects"))
        .unwrap()
        .flatten()
        .flat_map(|shard| std::fs::read_dir(shard.path()).unwrap().flatten())
        .map(|f| std::fs::read(f.path()).unwrap())
        .collect::<Vec<_>>();
    assert!(!files.is_empty());
    for bytes in files {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("first-visitor"), "a cookie reached the disk");
        assert!(
            !text.contains("nextnonce"),
            "a user's header reached the disk"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_that_forbids_storing_removes_the_stored_copy() {
    // The first answer may be stored; from then on the origin says no-store,
    // in its 304s and in full responses alike.
    let round = Arc::new(AtomicUsize::new(0));
    let r = round.clone();
    let origin = Origin::start(move |req| {
        let first = r.fetch_add(1, Ordering::SeqCst) == 0;
        if req.header("if-none-match") == Some("\"v1\"") {
            Reply::new(304)
                .header("etag", "\"v1\"")
                .header("cache-control", "no-store")
        } else {
            Reply::text("now private").header("etag", "\"v1\"").header(
                "cache-control",
                if first { "max-age=0" } else { "no-store" },
            )
        }
    })
    .await;
    let proxy = proxy(&[]);
    let client = ProxyClient::new(proxy.addr());
    let url = origin.url("/becomes-no-store");
    client.get(&url).await;
    assert_eq!(stored_urls(&proxy), vec![url.clone()]);
    let resp = client.get(&url).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "now private");
    assert!(
        stored_urls(&proxy).is_empty(),
        "the origin said no-store: the copy must go"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_response_that_forbids_storing_removes_the_stale_copy() {
    let round = Arc::new(AtomicUsize::new(0));
    let r = round.clone();
    let origin = Origin::start(move |_| {
        if r.fetch_add(1, Ordering::SeqCst) == 0 {
            Reply::text("version 1")
                .header("etag", "\"v1\"")
                .header("cache-control", "max-age=0, stale-if-error=3600")
        } else {
            Reply::text("version 2, personal").header("cache-control", "private")
        }
    })
    .await;
    let proxy = proxy(&[]);
    let client = ProxyClient::new(proxy.addr());
    let url = origin.url("/turns-private");
    client.get(&url).await;
    let resp = client.get(&url).await;
    assert_eq!(resp.text(), "version 2, personal");
    assert!(
        stored_urls(&proxy).is_empty(),
        "a stale copy the origin replaced by a private response must not stay (stale-if-error could serve it)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn purge_is_for_admin_clients_only() {
    let ip = non_loopback_ipv4();
    let origin =
        Origin::start(|_| Reply::text("kept").header("cache-control", "max-age=600")).await;
    // The proxy listens where a non-loopback client can reach it, and lets
    // that client use it; admin clients stay the default (loopback).
    let listen = format!("{ip}:0");
    let allow = format!("{ip}/32");
    let proxy = proxy(&[
        "--listen",
        &listen,
        "--allow-client",
        &allow,
        // The origin is on this host, which remote clients may not reach
        // unless it is opened for them.
        "--allow-network",
        "127.0.0.0/8",
    ]);
    let client = ProxyClient::new(proxy.addr());
    let url = origin.url("/precious");
    client.get(&url).await;
    assert!(cached(&client.get(&url).await));
    let purge = client
        .send(Method::from_bytes(b"PURGE").unwrap(), &url, &[], "")
        .await;
    assert_eq!(purge.status, 403, "{}", purge.text());
    assert!(
        purge
            .header("x-ferry-error")
            .unwrap_or("")
            .contains("admin-client"),
        "{:?}",
        purge.headers
    );
    assert!(
        cached(&client.get(&url).await),
        "a non-admin PURGE removed another user's object"
    );
}
