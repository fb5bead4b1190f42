//! Bounded origin fetches: at most `--max-concurrent` at once, the rest wait in
//! arrival order, a full queue is refused with 503 and Retry-After.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread")]
async fn twenty_requests_with_five_slots_run_five_at_a_time_in_arrival_order() {
    let gate = Gate::new();
    let origin = {
        let gate = gate.clone();
        Origin::start(move |req| Reply::text(req.path.clone()).gate(&gate)).await
    };
    let proxy = proxy(&["--no-cache", "--max-concurrent", "5"]);
    let client = ProxyClient::new(proxy.addr());

    let mut tasks = Vec::new();
    for i in 0..20 {
        let client = client.clone();
        let url = origin.url(&format!("/r{i}"));
        tasks.push(tokio::spawn(async move { client.get(&url).await }));
        // Send the next request only once this one has been admitted or queued,
        // so "arrival order" is well defined without timing assumptions.
        let arrived = wait_until(LIMIT, || {
            if i < 5 {
                origin.requests().len() == i + 1
            } else {
                proxy.metric("ferry_fetch_queue_length") == Some((i - 4) as u64)
            }
        })
        .await;
        assert!(arrived, "request {i} was neither forwarded nor queued");
    }
    assert_eq!(
        origin.requests().len(),
        5,
        "only five reach the origin at first"
    );
    assert_eq!(proxy.metric("ferry_fetch_slots_in_use"), Some(5));

    // Free one slot at a time: the next waiting request must be the next one sent.
    for next in 5..20 {
        gate.release(1);
        assert!(
            wait_until(LIMIT, || origin.requests().len() == next + 1).await,
            "request {next} was not admitted after a slot freed"
        );
        assert_eq!(origin.requests()[next].path, format!("/r{next}"));
        assert!(origin.in_flight() <= 5);
    }
    gate.open();
    for (i, task) in tasks.into_iter().enumerate() {
        let resp = task.await.unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.text(), format!("/r{i}"));
    }
    assert!(
        origin.max_in_flight() <= 5,
        "origin saw {} at once",
        origin.max_in_flight()
    );
    assert_eq!(origin.max_in_flight(), 5);
    assert_eq!(proxy.metric("ferry_fetch_queue_length"), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_queue_gets_503_with_retry_after() {
    let gate = Gate::new();
    let origin = {
        let gate = gate.clone();
        Origin::start(move |_| Reply::text("done").gate(&gate)).await
    };
    let proxy = proxy(&["--no-cache", "--max-concurrent", "1", "--max-queue", "1"]);
    let client = ProxyClient::new(proxy.addr());

    let first = {
        let (client, url) = (client.clone(), origin.url("/1"));
        tokio::spawn(async move { client.get(&url).await })
    };
    assert!(wait_until(LIMIT, || origin.requests().len() == 1).await);
    let second = {
        let (client, url) = (client.clone(), origin.url("/2"));
        tokio::spawn(async move { client.get(&url).await })
    };
    assert!(
        wait_until(LIMIT, || proxy.metric("ferry_fetch_queue_length")
            == Some(1))
        .await
    );

    let third = client.get(&origin.url("/3")).await;
    assert_eq!(third.status, 503);
    assert_eq!(third.header("retry-after"), Some("5"));
    assert!(
        third.text().contains("queue of waiting requests is full"),
        "{}",
        third.text()
    );

    gate.open();
    assert_eq!(first.await.unwrap().status, 200);
    assert_eq!(second.await.unwrap().status, 200);
    assert_eq!(origin.count("/3"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wait_longer_than_the_queue_timeout_gets_503() {
    let gate = Gate::new();
    let origin = {
        let gate = gate.clone();
        Origin::start(move |_| Reply::text("done").gate(&gate)).await
    };
    let proxy = proxy(&[
        "--no-cache",
        "--max-concurrent",
        "1",
        "--queue-timeout",
        "1",
    ]);
    let client = ProxyClient::new(proxy.addr());
    let first = {
        let (client, url) = (client.clone(), origin.url("/1"));
        tokio::spawn(async move { client.get(&url).await })
    };
    assert!(wait_until(LIMIT, || origin.requests().len() == 1).await);
    let second = client.get(&origin.url("/2")).await;
    assert_eq!(second.status, 503);
    assert!(second.header("retry-after").is_some());
    assert!(
        second.text().contains("waited too long"),
        "{}",
        second.text()
    );
    gate.open();
    assert_eq!(first.await.unwrap().status, 200);
}
