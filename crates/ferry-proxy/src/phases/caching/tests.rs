//! The cache phases driven directly, against a local origin: each test
//! checks the response and the [`CacheOutcome`] the phase reports.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use ferry_cache::{Cache, CacheConfig, CacheKey, NotStored};
use ferry_testkit::{Gate, Origin, Reply};
use http_body_util::BodyExt;

use super::answer::*;
use super::served::{CacheRequest, Served};
use crate::outcome::{CacheOutcome, Fwd, StaleServed};
use crate::state::ProxyState;
use http::request;

struct Fixture {
    state: Arc<ProxyState>,
    cache: Cache,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    fixture_with(|_| {})
}

fn fixture_with(adjust: impl FnOnce(&mut CacheConfig)) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = CacheConfig::new(dir.path().to_path_buf());
    adjust(&mut cfg);
    let cache = Cache::open(cfg).unwrap();
    // Enough fetch slots that the queue does not hide how many fetch.
    let config = crate::config::ProxyConfig {
        max_concurrent: 100,
        ..Default::default()
    };
    Fixture {
        state: ProxyState::for_tests_with(Some(cache.clone()), config),
        cache,
        _dir: dir,
    }
}

fn get(url: &str, headers: &[(&str, &str)]) -> request::Parts {
    let mut b = http::Request::builder().uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).unwrap().into_parts().0
}

/// Runs the cache phases for one request to the end of its body (so a store
/// completes): status, body, outcome.
async fn run(f: &Fixture, req: request::Parts) -> (u16, Bytes, CacheOutcome) {
    let key = CacheKey::from_uri(&req.uri).unwrap();
    let cx = CacheRequest {
        state: &f.state,
        cache: &f.cache,
        key: &key,
        client: "127.0.0.1".parse().unwrap(),
        host: "127.0.0.1",
        rule: None,
    };
    let Served {
        result, outcome, ..
    } = answer(cx, req).await;
    match result {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            (status, body, outcome)
        }
        Err(e) => (e.status().as_u16(), Bytes::new(), outcome),
    }
}

#[tokio::test]
async fn a_miss_is_stored_and_the_next_request_hits() {
    let f = fixture();
    let origin =
        Origin::start(|_| Reply::text("hello").header("cache-control", "max-age=60")).await;
    let url = origin.url("/a");
    let (status, body, outcome) = run(&f, get(&url, &[])).await;
    assert_eq!((status, body.as_ref()), (200, &b"hello"[..]));
    assert_eq!(
        outcome,
        CacheOutcome::Stored {
            fwd: Fwd::UriMiss,
            fwd_status: 200
        }
    );
    let (status, body, outcome) = run(&f, get(&url, &[])).await;
    assert_eq!((status, body.as_ref()), (200, &b"hello"[..]));
    assert!(
        matches!(outcome, CacheOutcome::Hit { ttl } if ttl > 50),
        "{outcome:?}"
    );
    assert_eq!(origin.count("/a"), 1);
}

#[tokio::test]
async fn a_response_that_forbids_storing_is_relayed_and_says_why() {
    let f = fixture();
    let origin =
        Origin::start(|_| Reply::text("private").header("cache-control", "no-store")).await;
    let url = origin.url("/p");
    for _ in 0..2 {
        let (status, body, outcome) = run(&f, get(&url, &[])).await;
        assert_eq!((status, body.as_ref()), (200, &b"private"[..]));
        assert_eq!(
            outcome,
            CacheOutcome::NotStored {
                fwd: Fwd::UriMiss,
                fwd_status: 200,
                reason: NotStored::NoStore
            }
        );
    }
    assert_eq!(origin.count("/p"), 2);
}

#[tokio::test]
async fn a_stale_copy_confirmed_by_a_304_is_served_as_revalidated() {
    let f = fixture();
    let origin = Origin::start(|req| {
        if req.header("if-none-match") == Some("\"v1\"") {
            Reply::new(304)
                .header("etag", "\"v1\"")
                .header("cache-control", "max-age=60")
        } else {
            Reply::text("body v1")
                .header("etag", "\"v1\"")
                .header("cache-control", "max-age=0")
        }
    })
    .await;
    let url = origin.url("/r");
    let (_, _, outcome) = run(&f, get(&url, &[])).await;
    assert!(
        matches!(outcome, CacheOutcome::Stored { .. }),
        "{outcome:?}"
    );
    let (status, body, outcome) = run(&f, get(&url, &[])).await;
    assert_eq!((status, body.as_ref()), (200, &b"body v1"[..]));
    assert_eq!(outcome, CacheOutcome::Revalidated);
    // Refreshed by the 304: fresh now.
    let (_, _, outcome) = run(&f, get(&url, &[])).await;
    assert!(matches!(outcome, CacheOutcome::Hit { .. }), "{outcome:?}");
    assert_eq!(origin.count("/r"), 2);
}

#[tokio::test]
async fn a_new_representation_on_revalidation_replaces_the_stored_one() {
    let f = fixture();
    let version = Arc::new(AtomicUsize::new(1));
    let v = version.clone();
    let origin = Origin::start(move |_| {
        let n = v.load(Ordering::SeqCst);
        Reply::text(format!("body v{n}"))
            .header("etag", &format!("\"v{n}\""))
            .header(
                "cache-control",
                if n == 1 { "max-age=0" } else { "max-age=60" },
            )
    })
    .await;
    let url = origin.url("/n");
    run(&f, get(&url, &[])).await;
    version.store(2, Ordering::SeqCst);
    let (_, body, outcome) = run(&f, get(&url, &[])).await;
    assert_eq!(body.as_ref(), b"body v2");
    assert_eq!(
        outcome,
        CacheOutcome::Stored {
            fwd: Fwd::Stale,
            fwd_status: 200
        }
    );
    let (_, body, outcome) = run(&f, get(&url, &[])).await;
    assert_eq!(body.as_ref(), b"body v2");
    assert!(matches!(outcome, CacheOutcome::Hit { .. }), "{outcome:?}");
}

#[tokio::test]
async fn stale_if_error_serves_the_stored_copy_when_the_origin_fails() {
    let f = fixture();
    let failing = Arc::new(AtomicUsize::new(0));
    let fail = failing.clone();
    let origin = Origin::start(move |_| {
        if fail.load(Ordering::SeqCst) == 1 {
            Reply::new(500)
        } else {
            Reply::text("kept")
                .header("etag", "\"k\"")
                .header("cache-control", "max-age=0, stale-if-error=600")
        }
    })
    .await;
    let url = origin.url("/e");
    run(&f, get(&url, &[])).await;
    failing.store(1, Ordering::SeqCst);
    let (status, body, outcome) = run(&f, get(&url, &[])).await;
    assert_eq!((status, body.as_ref()), (200, &b"kept"[..]));
    assert!(
        matches!(
            outcome,
            CacheOutcome::Stale {
                served: StaleServed::IfError {
                    fwd_status: Some(500)
                },
                ..
            }
        ),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn an_unreachable_origin_is_a_failed_fetch() {
    let f = fixture();
    let origin = Origin::start(|_| Reply::text("x")).await;
    let url = origin.url("/gone");
    drop(origin);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (status, _, outcome) = run(&f, get(&url, &[])).await;
    assert_eq!(status, 502);
    assert_eq!(outcome, CacheOutcome::FetchFailed { fwd: Fwd::UriMiss });
}

#[tokio::test]
async fn only_if_cached_without_a_copy_is_a_504_without_a_fetch() {
    let f = fixture();
    let origin = Origin::start(|_| Reply::text("x")).await;
    let url = origin.url("/o");
    let (status, _, outcome) = run(&f, get(&url, &[("cache-control", "only-if-cached")])).await;
    assert_eq!(status, 504);
    assert_eq!(outcome, CacheOutcome::OnlyIfCachedMiss);
    assert_eq!(origin.count("/o"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_make_one_fetch_and_the_rest_are_collapsed() {
    let f = Arc::new(fixture());
    let gate = Gate::new();
    let g = gate.clone();
    let origin = Origin::start(move |_| {
        Reply::text("shared")
            .header("cache-control", "max-age=60")
            .gate(&g)
    })
    .await;
    let url = origin.url("/c");
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let (f, url) = (f.clone(), url.clone());
        tasks.push(tokio::spawn(async move { run(&f, get(&url, &[])).await }));
    }
    while gate.waiting() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Let the followers reach the collapse point before the leader answers.
    tokio::time::sleep(Duration::from_millis(100)).await;
    gate.open();
    let mut stored = 0;
    let mut collapsed = 0;
    for t in tasks {
        let (status, body, outcome) = t.await.unwrap();
        assert_eq!((status, body.as_ref()), (200, &b"shared"[..]));
        match outcome {
            CacheOutcome::Stored { .. } => stored += 1,
            CacheOutcome::Collapsed { .. } => collapsed += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((stored, collapsed), (1, 4));
    assert_eq!(origin.count("/c"), 1);
}

#[tokio::test]
async fn stale_while_revalidate_answers_at_once_and_refreshes_in_the_background() {
    let f = fixture();
    let origin = Origin::start(|_| {
        Reply::text("swr")
            .header("etag", "\"s\"")
            .header("cache-control", "max-age=0, stale-while-revalidate=600")
    })
    .await;
    let url = origin.url("/s");
    run(&f, get(&url, &[])).await;
    let (status, body, outcome) = run(&f, get(&url, &[])).await;
    assert_eq!((status, body.as_ref()), (200, &b"swr"[..]));
    assert!(
        matches!(
            outcome,
            CacheOutcome::Stale {
                served: StaleServed::WhileRevalidate,
                ..
            }
        ),
        "{outcome:?}"
    );
    for _ in 0..200 {
        if origin.count("/s") == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        origin.count("/s"),
        2,
        "the background revalidation reached the origin"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_behind_a_slow_leader_do_not_stampede_the_origin() {
    let f = Arc::new(fixture_with(|cfg| {
        cfg.collapse_wait = Duration::from_millis(200);
    }));
    let gate = Gate::new();
    let g = gate.clone();
    let origin = Origin::start(move |_| {
        Reply::text("slow")
            .header("cache-control", "max-age=60")
            .gate(&g)
    })
    .await;
    let url = origin.url("/slow");
    let mut tasks = Vec::new();
    for _ in 0..30 {
        let (f, url) = (f.clone(), url.clone());
        tasks.push(tokio::spawn(async move { run(&f, get(&url, &[])).await }));
    }
    // Several collapse waits pass while the origin holds every answer.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let while_held = origin.count("/slow");
    gate.open();
    for t in tasks {
        let (status, body, _) = t.await.unwrap();
        assert_eq!((status, body.as_ref()), (200, &b"slow"[..]));
    }
    // Without the fix every follower fetched when its first wait ended (30);
    // now each ended wait adds at most one fetch.
    assert!(
        while_held < 10,
        "{while_held} origin requests for 30 collapsed requests"
    );
}
