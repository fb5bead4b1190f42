//! No number on the wire or on disk can crash the proxy or the cache tools:
//! `Age`, `max-age`, `Expires`, `Content-Length` and `Range` at their
//! extremes saturate or are refused, and objects stored with them still
//! answer later lookups and `ferry cache ls`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(30);

/// Header sets an origin can send; each is served twice (store, then look
/// up) and once more with a hostile range.
fn extremes() -> Vec<Vec<(&'static str, &'static str)>> {
    vec![
        vec![("cache-control", "max-age=18446744073709551615")],
        vec![("cache-control", "max-age=99999999999999999999999")],
        vec![("cache-control", "s-maxage=18446744073709551616, max-age=-1")],
        vec![
            ("cache-control", "max-age=60"),
            ("age", "18446744073709551615"),
        ],
        vec![
            ("cache-control", "max-age=60"),
            ("age", "99999999999999999999"),
        ],
        vec![("cache-control", "max-age=60"), ("age", "-5")],
        vec![("expires", "Fri, 31 Dec 99999 23:59:59 GMT")],
        vec![("expires", "Thu, 01 Jan 1970 00:00:00 GMT")],
        vec![
            ("last-modified", "Mon, 01 Jan 0001 00:00:00 GMT"),
            ("date", "Fri, 31 Dec 9999 23:59:59 GMT"),
        ],
        vec![
            (
                "cache-control",
                "max-age=60, stale-while-revalidate=18446744073709551615",
            ),
            ("age", "120"),
        ],
        vec![(
            "cache-control",
            "max-age=0, stale-if-error=99999999999999999999",
        )],
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn extreme_numbers_neither_crash_the_proxy_nor_break_the_cache() {
    let cases = extremes();
    let origin = Origin::start(move |req| {
        let i: usize = req.path.trim_start_matches('/').parse().unwrap_or(0);
        // A validator makes every case storable, so each is looked up again.
        let mut reply = Reply::text("body of ten").header("etag", "\"n\"");
        for (name, value) in &extremes()[i] {
            reply = reply.header(name, value);
        }
        reply
    })
    .await;
    let proxy = proxy(&[]);
    let client = ProxyClient::new(proxy.addr());
    let ranges = [
        "bytes=0-18446744073709551615",
        "bytes=18446744073709551615-",
        "bytes=-18446744073709551615",
        "bytes=99999999999999999999-",
        "bytes=5-18446744073709551616",
    ];
    // Store every case, then let more than a second pass: ages computed
    // later add whole seconds to what arrived.
    for (i, _) in cases.iter().enumerate() {
        client.get(&origin.url(&format!("/{i}"))).await;
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for (i, _) in cases.iter().enumerate() {
        let url = origin.url(&format!("/{i}"));
        for headers in [
            &[][..],
            &[("cache-control", "max-stale=18446744073709551615")][..],
            &[(
                "cache-control",
                "min-fresh=99999999999999999999, max-age=18446744073709551615",
            )][..],
            &[("range", ranges[i % ranges.len()])][..],
        ] {
            let resp =
                tokio::time::timeout(LIMIT, client.try_send(http::Method::GET, &url, headers, ""))
                    .await
                    .unwrap_or_else(|_| panic!("{url} {headers:?}: no answer"));
            let resp = resp.unwrap_or_else(|e| panic!("{url} {headers:?}: {e}"));
            assert!(
                [200, 206, 416].contains(&resp.status.as_u16()),
                "{url} {headers:?}: {}",
                resp.status
            );
        }
    }
    // A response whose Content-Length is beyond any file: relayed or refused,
    // never a crash.
    let huge = common::raw_exchange(
        proxy.addr(),
        format!(
            "GET {} HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551616\r\n\r\n",
            origin.url("/0")
        )
        .as_bytes(),
        Duration::from_secs(5),
    )
    .await;
    assert!(
        String::from_utf8_lossy(&huge.0).starts_with("HTTP/1.1 400"),
        "{:?}",
        String::from_utf8_lossy(&huge.0)
    );
    // Still alive and answering.
    assert_eq!(
        client.get(&format!("{}/healthz", proxy.url())).await.status,
        200
    );
    assert!(
        !proxy.stderr().contains("panicked"),
        "the proxy panicked: {}",
        proxy.stderr()
    );
    // And the tools read what was stored.
    let (ok, out, err) = cache_cmd(proxy.cache_dir().unwrap(), &["ls"]);
    assert!(ok, "ferry cache ls failed: {err}");
    assert!(out.lines().count() > 1, "{out}");
    let (ok, _, err) = cache_cmd(proxy.cache_dir().unwrap(), &["stats", "--json"]);
    assert!(ok, "{err}");
}
