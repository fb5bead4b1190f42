//! Range requests for objects that are not stored yet: resumed downloads,
//! download managers and segmented fetchers. One fetch of the whole object
//! answers the first range and fills the cache; every later range and the
//! whole download are hits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;

const SIZE: u64 = 3 * 1024 * 1024;

/// Waits until `url` is a hit (the background part of a range's whole
/// fetch finishes storing a moment after the range is answered).
async fn until_stored(client: &ProxyClient, url: &str) {
    for _ in 0..200 {
        let probe = client
            .get_with(
                url,
                &[("range", "bytes=0-0"), ("cache-control", "only-if-cached")],
            )
            .await;
        if probe.status == 206 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{url} was never stored");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_first_range_costs_one_whole_fetch_and_everything_after_is_a_hit() {
    let origin = Origin::start(|_| {
        Reply::new(200)
            .header("cache-control", "max-age=3600")
            .pattern(SIZE)
    })
    .await;
    let proxy = proxy(&[]);
    let client = ProxyClient::new(proxy.addr());
    let url = origin.url("/big.iso");

    let first = client
        .get_with(&url, &[("range", "bytes=1000000-1000999")])
        .await;
    assert_eq!(first.status, 206);
    assert_eq!(
        first.header("content-range"),
        Some(&*format!("bytes 1000000-1000999/{SIZE}"))
    );
    assert_eq!(first.body, pattern_bytes(1_000_000, 1000));
    until_stored(&client, &url).await;

    let tail = client.get_with(&url, &[("range", "bytes=-100")]).await;
    assert_eq!(tail.status, 206);
    assert_eq!(tail.header("x-cache"), Some("HIT"));
    assert_eq!(tail.body, pattern_bytes(SIZE - 100, 100));
    let whole = client.get(&url).await;
    assert_eq!(whole.status, 200);
    assert_eq!(whole.header("x-cache"), Some("HIT"));
    assert_eq!(whole.body, pattern_bytes(0, SIZE as usize));

    let requests = origin.requests();
    assert_eq!(requests.len(), 1, "one fetch in all");
    assert!(
        requests[0].headers.get("range").is_none(),
        "and of the whole object"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn segments_asked_for_at_once_share_one_fetch() {
    let gate = Gate::new();
    let origin = Origin::start({
        let gate = gate.clone();
        move |_| {
            Reply::new(200)
                .header("cache-control", "max-age=3600")
                .pattern(SIZE)
                .gate(&gate)
        }
    })
    .await;
    let proxy = proxy(&[]);
    let url = origin.url("/segments.bin");
    let segment = SIZE / 4;
    let mut tasks = Vec::new();
    for i in 0..4 {
        let client = ProxyClient::new(proxy.addr());
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let (first, last) = (i * segment, (i + 1) * segment - 1);
            let resp = client
                .get_with(&url, &[("range", &format!("bytes={first}-{last}"))])
                .await;
            (i, resp)
        }));
    }
    while origin.in_flight() < 1 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Every segment is waiting behind the one fetch now.
    tokio::time::sleep(Duration::from_millis(200)).await;
    gate.open();
    for task in tasks {
        let (i, resp) = task.await.unwrap();
        assert_eq!(resp.status, 206, "segment {i}");
        assert_eq!(
            resp.body,
            pattern_bytes(i * segment, segment as usize),
            "segment {i}"
        );
    }
    assert_eq!(origin.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_over_the_size_limit_is_fetched_as_the_range_asks() {
    let origin = Origin::start(|req| {
        let range = req
            .headers
            .get("range")
            .map(|v| v.to_str().unwrap().to_string());
        match range.as_deref() {
            Some("bytes=100-199") => Reply::new(206)
                .header("content-range", &format!("bytes 100-199/{SIZE}"))
                .body(pattern_bytes(100, 100)),
            _ => Reply::new(200)
                .header("cache-control", "max-age=3600")
                .pattern(SIZE),
        }
    })
    .await;
    let proxy = proxy(&["--max-object-size", "1MiB"]);
    let client = ProxyClient::new(proxy.addr());
    let url = origin.url("/huge.bin");
    let part = client.get_with(&url, &[("range", "bytes=100-199")]).await;
    assert_eq!(part.status, 206);
    assert_eq!(part.body, pattern_bytes(100, 100));
    let again = client.get_with(&url, &[("range", "bytes=100-199")]).await;
    assert_eq!(again.status, 206);
    let ranged = origin
        .requests()
        .iter()
        .filter(|r| r.headers.get("range").is_some())
        .count();
    assert_eq!(ranged, 2, "each range went to the origin as asked");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_range_that_no_longer_applies_gets_the_whole_object() {
    let origin = Origin::start(|_| {
        Reply::new(200)
            .header("cache-control", "max-age=3600")
            .header("etag", "\"v2\"")
            .pattern(4096)
    })
    .await;
    let proxy = proxy(&[]);
    let client = ProxyClient::new(proxy.addr());
    let url = origin.url("/changed.bin");
    // The client resumes a download of an older version ("v1").
    let resp = client
        .get_with(&url, &[("range", "bytes=100-199"), ("if-range", "\"v1\"")])
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, pattern_bytes(0, 4096));
    let unsatisfiable = client.get_with(&url, &[("range", "bytes=9000-")]).await;
    assert_eq!(unsatisfiable.status, 416);
    assert_eq!(origin.requests().len(), 1);
}
