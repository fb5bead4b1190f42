//! The cache's HTTP behaviour (RFC 9111 as a shared cache), seen through the
//! real proxy by a scripted origin that counts what reaches it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use http::Method;

#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_response_is_served_from_the_cache() {
    let origin =
        Origin::start(|_| Reply::html("<p>cached page</p>").header("cache-control", "max-age=60"))
            .await;
    let proxy = proxy(&[]);
    let client = ProxyClient::new(proxy.addr());

    let first = client.get(&origin.url("/page")).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("x-cache"), Some("MISS"));
    assert_eq!(
        first.header("cache-status"),
        Some("ferry; fwd=uri-miss; stored")
    );

    let second = client.get(&origin.url("/page")).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.text(), "<p>cached page</p>");
    assert_eq!(second.header("x-cache"), Some("HIT"));
    assert!(
        second
            .header("cache-status")
            .unwrap()
            .starts_with("ferry; hit")
    );
    let age: u64 = second.header("age").unwrap().parse().unwrap();
    assert!(age <= 60);
    assert_eq!(origin.count("/page"), 1, "the origin saw the request once");

    let log = proxy.wait_stdout_lines(2, Duration::from_secs(5));
    assert!(log[0].ends_with(" MISS"), "{log:?}");
    assert!(log[1].ends_with(" HIT"), "{log:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_entry_is_revalidated_and_a_304_refreshes_its_headers() {
    let origin = Origin::start(|req| {
        if req.header("if-none-match") == Some("\"v1\"") {
            Reply::new(304)
                .header("etag", "\"v1\"")
                .header("cache-control", "max-age=60")
                .header("x-refreshed", "yes")
        } else {
            Reply::text("version one")
                .header("etag", "\"v1\"")
                .header("cache-control", "max-age=0")
                .header("x-refreshed", "no")
        }
    })
    .await;
    let proxy = proxy(&[]);
    let client = ProxyClient::new(proxy.addr());

    let first = client.get(&origin.url("/doc")).await;
    assert_eq!(first.header("x-refreshed"), Some("no"));

    // Stale at once (max-age=0): revalidated with the stored validator.
    let second = client.get(&origin.url("/doc")).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.text(), "version one");
    assert_eq!(
        second.header("x-refreshed"),
        Some("yes"),
        "304 headers replace the stored ones"
    );
    assert_eq!(
        second.header("cache-status"),
        Some("ferry; fwd=stale; fwd-status=304")
    );
    assert_eq!(second.header("x-cache"), Some("HIT"));
    assert_eq!(origin.requests()[1].header("if-none-match"), Some("\"v1\""));

    // The refreshed entry is fresh for 60 s now.
    let third = client.get(&origin.url("/doc")).await;
    assert!(cached(&third));
    assert_eq!(third.header("x-refreshed"), Some("yes"));
    assert_eq!(origin.count("/doc"), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_store_and_private_responses_are_not_stored() {
    let origin = Origin::start(|req| match req.path.as_str() {
        "/no-store" => Reply::text("secret").header("cache-control", "no-store, max-age=60"),
        _ => Reply::text("mine").header("cache-control", "private, max-age=60"),
    })
    .await;
    let proxy = proxy(&[]);
    let client = ProxyClient::new(proxy.addr());
    for path in ["/no-store", "/private"] {
        for _ in 0..2 {
            let resp = client.get(&origin.url(path)).await;
            assert_eq!(resp.status, 200);
            assert_eq!(resp.header("x-cache"), Some("MISS"), "{path}");
        }
        assert_eq!(origin.count(path), 2, "{path}");
    }
    let dir = proxy.cache_dir().unwrap().to_path_buf();
    let (_, listing, _) = cache_cmd(&dir, &["ls"]);
    assert!(
        !listing.contains("/no-store") && !listing.contains("/private"),
        "{listing}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn vary_keeps_a_separate_variant_per_request_header_value() {
    let origin = Origin::start(|req| {
        let lang = req.header("accept-language").unwrap_or("none").to_string();
        Reply::text(format!("hello in {lang}"))
            .header("cache-control", "max-age=60")
            .header("vary", "Accept-Language")
    })
    .await;
    let proxy = proxy(&[]);
    let client = ProxyClient::new(proxy.addr());
    let url = origin.url("/greet");
    for (lang, hit) in [("en", false), ("fr", false), ("en", true), ("fr", true)] {
        let resp = client.get_with(&url, &[("accept-language", lang)]).await;
        assert_eq!(resp.text(), format!("hello in {lang}"));
        assert_eq!(cached(&resp), hit, "{lang}");
    }
    assert_eq!(origin.count("/greet"), 2);

    // `Vary: *` is never reused.
    let star = Origin::start(|_| {
        Reply::text("star")
            .header("cache-control", "max-age=60")
            .header("vary", "*")
    })
    .await;
    for _ in 0..2 {
        assert!(!cached(&client.get(&star.url("/s")).await));
    }
    assert_eq!(star.count("/s"), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn unsafe_methods_invalidate_the_stored_response() {
    let version = Arc::new(AtomicUsize::new(1));
    let origin = {
        let version = version.clone();
        Origin::start(move |req| {
            if req.method == "POST" {
                version.fetch_add(1, Ordering::SeqCst);
                Reply::new(303).header("location", "/item")
            } else {
                Reply::text(format!("v{}", version.load(Ordering::SeqCst)))
                    .header("cache-control", "max-age=600")
            }
        })
        .await
    };
    let proxy = proxy(&[]);
    let client = ProxyClient::new(proxy.addr());
    assert_eq!(client.get(&origin.url("/item")).await.text(), "v1");
    assert!(cached(&client.get(&origin.url("/item")).await));
    let post = client
        .send(Method::POST, &origin.url("/item"), &[], "change")
        .await;
    assert_eq!(post.status, 303);
    let after = client.get(&origin.url("/item")).await;
    assert_eq!(after.text(), "v2", "the POST invalidated the stored copy");
    assert!(!cached(&after));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unsafe_request_invalidates_every_variant_of_its_target() {
    // RFC 9111 §4.4: the cache invalidates the target URI, so every response
    // stored for it, whatever request headers it was selected by.
    let version = Arc::new(AtomicUsize::new(1));
    let origin = {
        let version = version.clone();
        Origin::start(move |req| {
            if req.method == "PUT" {
                version.fetch_add(1, Ordering::SeqCst);
                return Reply::new(204);
            }
            let lang = req.header("accept-language").unwrap_or("none").to_string();
            Reply::text(format!("v{} in {lang}", version.load(Ordering::SeqCst)))
                .header("cache-control", "max-age=600")
                .header("vary", "Accept-Language")
        })
        .await
    };
    let proxy = proxy(&[]);
    let client = ProxyClient::new(proxy.addr());
    let url = origin.url("/doc");
    for lang in ["en", "fr", "en", "fr"] {
        let resp = client.get_with(&url, &[("accept-language", lang)]).await;
        assert_eq!(resp.text(), format!("v1 in {lang}"));
    }
    assert_eq!(origin.count("/doc"), 2, "both variants stored");
    let put = client.send(Method::PUT, &url, &[], "new text").await;
    assert_eq!(put.status, 204);
    // The first request after the change stores a new variant list; the
    // other language's old variant must not come back with it.
    for lang in ["en", "fr"] {
        let resp = client.get_with(&url, &[("accept-language", lang)]).await;
        assert_eq!(resp.text(), format!("v2 in {lang}"), "{lang} after the PUT");
        assert!(!cached(&resp), "{lang}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn only_if_cached_gets_504_when_absent_and_the_copy_when_present() {
    let origin = Origin::start(|_| Reply::text("here").header("cache-control", "max-age=60")).await;
    let proxy = proxy(&[]);
    let client = ProxyClient::new(proxy.addr());
    let oic = [("cache-control", "only-if-cached")];
    let resp = client.get_with(&origin.url("/x"), &oic).await;
    assert_eq!(resp.status, 504);
    assert_eq!(origin.count("/x"), 0);
    client.get(&origin.url("/x")).await;
    let resp = client.get_with(&origin.url("/x"), &oic).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "here");
    assert_eq!(origin.count("/x"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn heuristic_freshness_from_last_modified() {
    let ten_days_ago =
        httpdate::fmt_http_date(std::time::SystemTime::now() - Duration::from_secs(10 * 86400));
    let origin =
        Origin::start(move |_| Reply::text("old file").header("last-modified", &ten_days_ago))
            .await;
    let proxy = proxy(&[]);
    let client = ProxyClient::new(proxy.addr());
    assert!(!cached(&client.get(&origin.url("/f")).await));
    let second = client.get(&origin.url("/f")).await;
    assert!(
        cached(&second),
        "10% of 10 days is fresh enough: {:?}",
        second.headers
    );
    assert_eq!(origin.count("/f"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn request_directives_no_cache_and_pragma_force_revalidation() {
    let origin = Origin::start(|req| {
        if req.header("if-none-match").is_some() {
            Reply::new(304)
                .header("etag", "\"e\"")
                .header("cache-control", "max-age=60")
        } else {
            Reply::text("body")
                .header("etag", "\"e\"")
                .header("cache-control", "max-age=60")
        }
    })
    .await;
    let proxy = proxy(&[]);
    let client = ProxyClient::new(proxy.addr());
    client.get(&origin.url("/r")).await;
    let resp = client
        .get_with(&origin.url("/r"), &[("cache-control", "no-cache")])
        .await;
    assert_eq!(resp.text(), "body");
    assert_eq!(origin.count("/r"), 2, "no-cache went to the origin");
    let resp = client
        .get_with(&origin.url("/r"), &[("pragma", "no-cache")])
        .await;
    assert_eq!(resp.text(), "body");
    assert_eq!(
        origin.count("/r"),
        3,
        "Pragma: no-cache without Cache-Control went to the origin"
    );
    let resp = client
        .get_with(&origin.url("/r"), &[("cache-control", "max-age=0")])
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(origin.count("/r"), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_if_error_serves_the_stale_copy_when_the_origin_is_down() {
    let origin = Origin::start(|_| {
        Reply::text("still here").header("cache-control", "max-age=0, stale-if-error=600")
    })
    .await;
    let url = origin.url("/sie");
    let proxy = proxy(&[]);
    let client = ProxyClient::new(proxy.addr());
    assert_eq!(client.get(&url).await.text(), "still here");
    origin.stop();
    let resp = client.get(&url).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.text(), "still here");
    assert!(cached(&resp));
    assert!(
        resp.header("cache-status")
            .unwrap()
            .contains("stale-if-error"),
        "{:?}",
        resp.headers
    );

    // Without stale-if-error the failure is reported.
    let strict =
        Origin::start(|_| Reply::text("gone soon").header("cache-control", "max-age=0")).await;
    let url = strict.url("/strict");
    client.get(&url).await;
    strict.stop();
    assert_eq!(client.get(&url).await.status, 502);
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_while_revalidate_answers_at_once_and_refreshes_in_the_background() {
    let gate = Gate::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let origin = {
        let (gate, calls) = (gate.clone(), calls.clone());
        Origin::start(move |_| {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            let reply = Reply::text(format!("generation {n}"))
                .header("cache-control", "max-age=0, stale-while-revalidate=600");
            // Every fetch after the first is held until the test releases it.
            if n > 1 { reply.gate(&gate) } else { reply }
        })
        .await
    };
    let proxy = proxy(&[]);
    let client = ProxyClient::new(proxy.addr());
    assert_eq!(client.get(&origin.url("/swr")).await.text(), "generation 1");

    // The origin is holding every answer, yet the stale copy comes back now.
    let resp = client.get(&origin.url("/swr")).await;
    assert_eq!(resp.text(), "generation 1");
    assert!(cached(&resp));
    assert!(
        resp.header("cache-status")
            .unwrap()
            .contains("stale-while-revalidate")
    );
    assert!(
        wait_until(Duration::from_secs(10), || origin.count("/swr") == 2).await,
        "no background revalidation"
    );

    gate.open();
    // Once the background fetch stored generation 2, it is what clients get.
    let mut latest = String::new();
    for _ in 0..100 {
        latest = client.get(&origin.url("/swr")).await.text();
        if latest != "generation 1" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(latest.starts_with("generation "), "{latest}");
    assert_ne!(latest, "generation 1");
}

#[tokio::test(flavor = "multi_thread")]
async fn ranges_heads_and_conditionals_are_answered_from_a_cached_object() {
    let body: String = (0..1000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let origin = {
        let body = body.clone();
        Origin::start(move |_| {
            Reply::text(body.clone())
                .header("cache-control", "max-age=60")
                .header("etag", "\"abc\"")
        })
        .await
    };
    let proxy = proxy(&[]);
    let client = ProxyClient::new(proxy.addr());
    let url = origin.url("/obj");
    client.get(&url).await;

    let range = client.get_with(&url, &[("range", "bytes=10-19")]).await;
    assert_eq!(range.status, 206);
    assert_eq!(range.header("content-range"), Some("bytes 10-19/1000"));
    assert_eq!(range.text(), &body[10..20]);
    assert!(cached(&range));

    let bad = client.get_with(&url, &[("range", "bytes=5000-")]).await;
    assert_eq!(bad.status, 416);

    let head = client.send(Method::HEAD, &url, &[], "").await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-length"), Some("1000"));
    assert!(cached(&head));

    let cond = client.get_with(&url, &[("if-none-match", "\"abc\"")]).await;
    assert_eq!(cond.status, 304);
    assert!(cached(&cond));

    assert_eq!(origin.count("/obj"), 1, "all of it came from the cache");
}

/// HTTP/2 upstream (the TLS origin offers h2): bodies often end with an
/// empty DATA frame, which must not break storing.
#[tokio::test(flavor = "multi_thread")]
async fn https_responses_fetched_by_the_proxy_are_cached() {
    let ca = TestCa::new();
    let origin = Origin::start_tls(&ca, |_| {
        Reply::html("secure and cached").header("cache-control", "max-age=60")
    })
    .await;
    let proxy = proxy(&["--upstream-ca", ca.pem_path().to_str().unwrap()]);
    let client = ProxyClient::new(proxy.addr());
    let first = client.get(&origin.url("/s")).await;
    assert_eq!(first.text(), "secure and cached");
    assert_eq!(
        first.header("cache-status"),
        Some("ferry; fwd=uri-miss; stored")
    );
    let second = client.get(&origin.url("/s")).await;
    assert_eq!(second.text(), "secure and cached");
    assert!(cached(&second), "{:?}\n{}", second.headers, proxy.stderr());
    assert_eq!(origin.count("/s"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_204_and_error_statuses_with_explicit_freshness_are_reused() {
    let origin = Origin::start(|req| match req.path.as_str() {
        "/empty" => Reply::new(204).header("cache-control", "max-age=60"),
        "/down" => Reply::new(503)
            .header("cache-control", "max-age=60")
            .body("maintenance"),
        "/odd" => Reply::new(599)
            .header("cache-control", "max-age=60, must-understand")
            .body("odd"),
        _ => Reply::new(404),
    })
    .await;
    let proxy = proxy(&[]);
    let client = ProxyClient::new(proxy.addr());
    for path in ["/empty", "/down"] {
        let first = client.get(&origin.url(path)).await;
        let second = client.get(&origin.url(path)).await;
        assert_eq!(first.status, second.status, "{path}");
        assert_eq!(second.header("x-cache"), Some("HIT"), "{path}");
        assert_eq!(origin.count(path), 1, "{path}");
    }
    assert_eq!(client.get(&origin.url("/down")).await.text(), "maintenance");
    // must-understand: a status whose rules the cache does not know is not stored.
    client.get(&origin.url("/odd")).await;
    let again = client.get(&origin.url("/odd")).await;
    assert_eq!(again.status.as_u16(), 599);
    assert_eq!(origin.count("/odd"), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_origin_gets_the_stale_copy_unless_it_must_be_revalidated() {
    // max-age=0 with a validator: stored, and stale at once.
    let origin = Origin::start(|req| match req.path.as_str() {
        "/soft" => Reply::text("soft copy")
            .header("cache-control", "max-age=0")
            .header("etag", "\"s\""),
        "/strict" => Reply::text("strict copy")
            .header("cache-control", "max-age=0, must-revalidate")
            .header("etag", "\"m\""),
        _ => Reply::text("proxy-revalidate copy")
            .header("cache-control", "max-age=0, proxy-revalidate")
            .header("etag", "\"p\""),
    })
    .await;
    let proxy = proxy(&[]);
    let client = ProxyClient::new(proxy.addr());
    for path in ["/soft", "/strict", "/proxy"] {
        assert_eq!(client.get(&origin.url(path)).await.status, 200);
    }
    origin.stop();

    let soft = client.get(&origin.url("/soft")).await;
    assert_eq!(soft.status, 200, "a disconnected cache may serve stale");
    assert_eq!(soft.text(), "soft copy");
    assert!(
        soft.header("cache-status").unwrap().contains("fwd=stale"),
        "{:?}",
        soft.header("cache-status")
    );
    for path in ["/strict", "/proxy"] {
        let strict = client.get(&origin.url(path)).await;
        assert_eq!(strict.status, 504, "{path}: never stale, 504 instead");
        assert!(
            strict
                .header("x-ferry-error")
                .unwrap()
                .contains("must be revalidated"),
            "{:?}",
            strict.header("x-ferry-error")
        );
        let page = strict.text();
        assert!(
            !page.contains("strict copy") && !page.contains("proxy-revalidate copy"),
            "{path}: {page}"
        );
    }
    // A client asking for validation does not get the stale copy either.
    let validated = client
        .get_with(&origin.url("/soft"), &[("cache-control", "no-cache")])
        .await;
    assert_eq!(validated.status, 504);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_post_response_that_names_its_url_answers_the_next_get() {
    let origin = Origin::start(|req| match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/form") => Reply::text("posted result")
            .header("cache-control", "max-age=60")
            .header("content-location", "/form"),
        ("POST", _) => Reply::text("elsewhere").header("cache-control", "max-age=60"),
        _ => Reply::text("from the origin").header("cache-control", "max-age=60"),
    })
    .await;
    let proxy = proxy(&[]);
    let client = ProxyClient::new(proxy.addr());
    let posted = client
        .send(Method::POST, &origin.url("/form"), &[], "a=1")
        .await;
    assert_eq!(posted.text(), "posted result");
    let get = client.get(&origin.url("/form")).await;
    assert_eq!(get.text(), "posted result");
    assert_eq!(get.header("x-cache"), Some("HIT"));
    assert_eq!(origin.count("/form"), 1, "only the POST reached the origin");

    // Without a Content-Location naming the URL, the POST only invalidates.
    client
        .send(Method::POST, &origin.url("/other"), &[], "a=1")
        .await;
    assert_eq!(
        client.get(&origin.url("/other")).await.text(),
        "from the origin"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn conditional_requests_are_answered_from_a_fresh_copy() {
    let origin = Origin::start(|_| {
        Reply::text("body")
            .header("cache-control", "max-age=60")
            .header("etag", "W/\"v1\"")
            .header("last-modified", "Sun, 06 Nov 1994 08:49:37 GMT")
    })
    .await;
    let proxy = proxy(&[]);
    let client = ProxyClient::new(proxy.addr());
    client.get(&origin.url("/c")).await;
    for headers in [
        &[("if-none-match", "\"v0\", W/\"v1\", \"v2\"")][..],
        &[("if-none-match", "\"v1\"")],
        &[("if-modified-since", "Sunday, 06-Nov-94 08:49:37 GMT")],
        &[("if-modified-since", "Sun Nov  6 08:49:37 1994")],
    ] {
        let resp = client.get_with(&origin.url("/c"), headers).await;
        assert_eq!(resp.status, 304, "{headers:?}");
        assert_eq!(resp.header("etag"), Some("W/\"v1\""), "{headers:?}");
    }
    // If-None-Match decides when both are sent.
    let both = client
        .get_with(
            &origin.url("/c"),
            &[
                ("if-none-match", "\"other\""),
                ("if-modified-since", "Sun, 06 Nov 1994 08:49:37 GMT"),
            ],
        )
        .await;
    assert_eq!(both.status, 200);
    assert_eq!(origin.count("/c"), 1, "all answered by the cache");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_age_that_is_not_one_integer_makes_the_response_stale() {
    let origin = Origin::start(|req| {
        let age = match req.path.as_str() {
            "/good" => "5",
            "/float" => "5.0",
            "/list" => "0, 0",
            _ => "abc",
        };
        Reply::text("x")
            .header("cache-control", "max-age=3600")
            .header("etag", "\"e\"")
            .header("age", age)
    })
    .await;
    let proxy = proxy(&[]);
    let client = ProxyClient::new(proxy.addr());
    for path in ["/good", "/float", "/list", "/text"] {
        client.get(&origin.url(path)).await;
        client.get(&origin.url(path)).await;
    }
    assert_eq!(origin.count("/good"), 1);
    for path in ["/float", "/list", "/text"] {
        assert_eq!(origin.count(path), 2, "{path} is revalidated");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_that_say_the_same_thing_share_a_variant() {
    let origin = Origin::start(|_| {
        Reply::text("negotiated")
            .header("cache-control", "max-age=60")
            .header("vary", "Accept-Language")
    })
    .await;
    let proxy = proxy(&[]);
    let client = ProxyClient::new(proxy.addr());
    client
        .get_with(&origin.url("/v"), &[("accept-language", "en, de")])
        .await;
    for same in ["de, en", "EN,De", "  en ,de "] {
        let resp = client
            .get_with(&origin.url("/v"), &[("accept-language", same)])
            .await;
        assert_eq!(resp.header("x-cache"), Some("HIT"), "{same}");
    }
    client
        .get_with(&origin.url("/v"), &[("accept-language", "fr")])
        .await;
    assert_eq!(origin.count("/v"), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stored_part_answers_the_ranges_inside_it_and_nothing_else() {
    // A range of an object the cache could keep is fetched whole (see
    // tests/cache_ranges.rs); a part is stored when the object is over
    // --max-object-size and the part is not.
    let origin = Origin::start(|req| {
        let fresh = |r: Reply| {
            r.header("cache-control", "max-age=60")
                .header("etag", "\"p\"")
        };
        match (req.path.as_str(), req.header("range")) {
            ("/p", Some("bytes=10-29")) => fresh(
                Reply::new(206)
                    .header("content-range", "bytes 10-29/4096")
                    .body(pattern_bytes(10, 20)),
            ),
            // A part whose body is not the size its range names.
            ("/bad", _) => fresh(
                Reply::new(206)
                    .header("content-range", "bytes 0-9/100")
                    .body("abc"),
            ),
            _ => fresh(Reply::new(200).body(pattern_bytes(0, 4096))),
        }
    })
    .await;
    let proxy = proxy(&["--max-object-size", "1KiB"]);
    let client = ProxyClient::new(proxy.addr());
    let url = origin.url("/p");
    let first = client.get_with(&url, &[("range", "bytes=10-29")]).await;
    assert_eq!(first.status, 206);
    assert_eq!(&first.body[..], &pattern_bytes(10, 20)[..]);
    let asked = origin.count("/p");

    let inner = client.get_with(&url, &[("range", "bytes=15-20")]).await;
    assert_eq!(inner.status, 206);
    assert_eq!(inner.header("x-cache"), Some("HIT"));
    assert_eq!(inner.header("content-range"), Some("bytes 15-20/4096"));
    assert_eq!(&inner.body[..], &pattern_bytes(15, 6)[..]);
    assert_eq!(
        origin.count("/p"),
        asked,
        "the inner range came from the part"
    );
    // Open-ended past the stored part: the origin is asked.
    let wider = client.get_with(&url, &[("range", "bytes=25-")]).await;
    assert_eq!(wider.header("x-cache"), Some("MISS"));
    assert!(origin.count("/p") > asked);

    // A part that does not hold what its Content-Range says is never kept.
    for _ in 0..2 {
        let resp = client
            .get_with(&origin.url("/bad"), &[("range", "bytes=0-9")])
            .await;
        assert_ne!(resp.header("x-cache"), Some("HIT"));
    }
    assert!(origin.count("/bad") >= 2);
}
