use std::time::Duration;

use super::*;
use crate::cache::test_support::{body_of, config, get, key_of, ok, store, store_at};
use crate::cache::{Lookup, MissKind};

/// Answers `url` from the cache (a fresh hit), as the proxy does.
async fn serve(cache: &Cache, url: &str) {
    let req = get(url, &[]);
    let Lookup::Fresh(hit) = cache.lookup(&req, &key_of(&req)).await else {
        panic!("fresh hit expected for {url}")
    };
    body_of(hit, &req).await;
}

fn query(text: &str, prefix: bool, order: BrowseOrder, limit: usize) -> BrowseQuery {
    BrowseQuery {
        text: text.into(),
        prefix,
        order,
        limit,
    }
}

fn urls(list: &[ObjectSummary]) -> Vec<&str> {
    list.iter().map(|s| s.url.as_str()).collect()
}

fn hits_of(cache: &Cache, url: &str) -> u64 {
    let found = cache.browse(&query(url, true, BrowseOrder::Recent, 10));
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].hits
}

async fn wait_until_browsable(cache: &Cache) {
    for _ in 0..1000 {
        if cache.stats().browse_complete {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the objects on disk were never described");
}

/// Four objects stored 10 s apart (oldest first), one of them large and
/// one a 404; the first served three times.
async fn four_objects(cache: &Cache) -> SystemTime {
    let t0 = SystemTime::now() - Duration::from_secs(100);
    let fresh = ok(&[("cache-control", "max-age=600")]);
    let mut not_found = ok(&[("cache-control", "max-age=600")]);
    not_found.status = http::StatusCode::NOT_FOUND;
    let at = |s| t0 + Duration::from_secs(s);
    store_at(
        cache,
        &get("http://a.test/docs/one", &[]),
        &fresh,
        b"one",
        t0,
    )
    .await;
    let big = vec![7u8; 5000];
    store_at(
        cache,
        &get("http://a.test/docs/two", &[]),
        &fresh,
        &big,
        at(10),
    )
    .await;
    store_at(
        cache,
        &get("http://b.test/Docs/3", &[]),
        &fresh,
        b"3",
        at(20),
    )
    .await;
    store_at(
        cache,
        &get("http://b.test/gone", &[]),
        &not_found,
        b"",
        at(30),
    )
    .await;
    for _ in 0..3 {
        serve(cache, "http://a.test/docs/one").await;
    }
    t0
}

#[tokio::test]
async fn browse_matches_orders_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(config(dir.path())).unwrap();
    let t0 = four_objects(&cache).await;

    let all = cache.browse(&BrowseQuery::default());
    assert_eq!(
        urls(&all),
        [
            "http://b.test/gone",
            "http://b.test/Docs/3",
            "http://a.test/docs/two",
            "http://a.test/docs/one"
        ]
    );
    assert_eq!(all[0].status, 404);
    assert_eq!(all[1].status, 200);
    let ms = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_millis();
    assert_eq!(ms(all[3].stored_at), ms(t0));

    // Substring, ignoring case.
    let docs = cache.browse(&query("DOCS", false, BrowseOrder::Recent, 10));
    assert_eq!(
        urls(&docs),
        [
            "http://b.test/Docs/3",
            "http://a.test/docs/two",
            "http://a.test/docs/one"
        ]
    );
    // Prefix, ignoring case; a substring is no prefix.
    let a = cache.browse(&query("HTTP://A.test/docs/", true, BrowseOrder::Recent, 10));
    assert_eq!(
        urls(&a),
        ["http://a.test/docs/two", "http://a.test/docs/one"]
    );
    assert!(
        cache
            .browse(&query("docs", true, BrowseOrder::Recent, 10))
            .is_empty()
    );
    assert!(
        cache
            .browse(&query("nowhere", false, BrowseOrder::Recent, 10))
            .is_empty()
    );

    // Largest first; the size is the file's, head and body.
    let largest = cache.browse(&query("", false, BrowseOrder::Largest, 1));
    assert_eq!(urls(&largest), ["http://a.test/docs/two"]);
    let id = ObjectId::from_hex(&largest[0].id).unwrap();
    let on_disk = std::fs::metadata(disk::object_path(dir.path(), id)).unwrap();
    assert_eq!(largest[0].bytes, on_disk.len());
    assert!(largest[0].bytes > 5000);

    // Most hit first; ties go to the most recent.
    let hit = cache.browse(&query("", false, BrowseOrder::MostHit, 2));
    assert_eq!(urls(&hit), ["http://a.test/docs/one", "http://b.test/gone"]);
    assert_eq!((hit[0].hits, hit[1].hits), (3, 0));

    // Limits.
    assert_eq!(
        cache
            .browse(&query("", false, BrowseOrder::Recent, 2))
            .len(),
        2
    );
    assert!(
        cache
            .browse(&query("", false, BrowseOrder::Recent, 0))
            .is_empty()
    );
}

#[tokio::test]
async fn hits_count_responses_served_fresh_stale_or_revalidated() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(config(dir.path())).unwrap();
    let url = "http://a.test/r";
    let req = get(url, &[]);
    let stale = ok(&[("cache-control", "max-age=0"), ("etag", "\"1\"")]);
    store(&cache, &req, &stale, b"body").await;
    assert_eq!(hits_of(&cache, url), 0);

    // Served stale (as stale-while-revalidate or stale-if-error would).
    let Lookup::Stale(s) = cache.lookup(&req, &key_of(&req)).await else {
        panic!("stale expected")
    };
    body_of(s.hit, &req).await;
    assert_eq!(hits_of(&cache, url), 1);

    // A lookup that is not answered from (a background revalidation's) is
    // no hit; the response a 304 refreshed is, and keeps the count.
    let Lookup::Stale(s) = cache.lookup(&req, &key_of(&req)).await else {
        panic!("stale expected")
    };
    assert_eq!(hits_of(&cache, url), 1);
    let mut not_modified = ok(&[("cache-control", "max-age=60"), ("etag", "\"1\"")]);
    not_modified.status = http::StatusCode::NOT_MODIFIED;
    let refreshed = cache
        .refresh(s.hit, &key_of(&req), &req, &not_modified, SystemTime::now())
        .await
        .unwrap();
    body_of(refreshed, &req).await;
    assert_eq!(hits_of(&cache, url), 2);

    // Fresh hits, HEAD and conditional answers alike.
    serve(&cache, url).await;
    let mut head = get(url, &[("if-none-match", "\"1\"")]);
    head.method = http::Method::HEAD;
    let Lookup::Fresh(hit) = cache.lookup(&head, &key_of(&head)).await else {
        panic!("fresh expected")
    };
    assert_eq!(body_of(hit, &head).await.0, 304);
    assert_eq!(hits_of(&cache, url), 4);
    let id = ObjectId::from_hex(&cache.browse(&BrowseQuery::default())[0].id).unwrap();
    assert_eq!(cache.object_detail(&id.to_hex()).await.unwrap().hits, 4);

    // A new response replacing it counts from zero.
    store(
        &cache,
        &req,
        &ok(&[("cache-control", "max-age=60")]),
        b"new",
    )
    .await;
    assert_eq!(hits_of(&cache, url), 0);
}

#[tokio::test]
async fn object_detail_reports_headers_freshness_and_variants() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(config(dir.path())).unwrap();
    let now = SystemTime::now();
    let page = ok(&[
        ("cache-control", "max-age=600"),
        ("age", "100"),
        ("x-test", "yes"),
    ]);
    let twenty_ago = now - Duration::from_secs(20);
    store_at(
        &cache,
        &get("http://a.test/page", &[]),
        &page,
        b"hello",
        twenty_ago,
    )
    .await;
    let old = ok(&[("cache-control", "max-age=60"), ("etag", "\"e\"")]);
    let two_min_ago = now - Duration::from_secs(120);
    store_at(
        &cache,
        &get("http://a.test/old", &[]),
        &old,
        b"x",
        two_min_ago,
    )
    .await;
    let en = get("http://a.test/v", &[("accept-language", "en")]);
    let fr = get("http://a.test/v", &[("accept-language", "fr")]);
    let vary = ok(&[("cache-control", "max-age=60"), ("vary", "Accept-Language")]);
    store(&cache, &en, &vary, b"hello").await;
    store(&cache, &fr, &vary, b"bonjour").await;

    let check_page = |d: ObjectDetail, summary: &ObjectSummary| {
        assert_eq!(d.url, "http://a.test/page");
        assert_eq!(d.id, summary.id);
        assert_eq!((d.status, d.body_bytes, d.bytes), (200, 5, summary.bytes));
        assert_eq!(d.lifetime_secs, 600);
        // The Age it came with plus the 20 s since it arrived.
        assert!((120..=122).contains(&d.age_secs), "{}", d.age_secs);
        assert!(d.fresh);
        assert!(d.headers.contains(&("x-test".into(), "yes".into())));
        assert!(
            d.headers
                .contains(&("cache-control".into(), "max-age=600".into()))
        );
        assert!(d.vary.is_empty() && d.variants.is_empty());
        assert_eq!(d.stored_at, summary.stored_at);
    };
    let page_row = cache.browse(&query("/page", false, BrowseOrder::Recent, 10));
    let detail = cache.object_detail(&page_row[0].id).await.unwrap();
    check_page(detail, &page_row[0]);

    let old_row = &cache.browse(&query("/old", false, BrowseOrder::Recent, 10))[0];
    let d = cache.object_detail(&old_row.id).await.unwrap();
    assert_eq!(d.lifetime_secs, 60);
    assert!(d.age_secs >= 120 && !d.fresh);

    // Each variant is its own row; the detail names the others.
    let rows = cache.browse(&query("a.test/v", false, BrowseOrder::Recent, 10));
    assert_eq!(urls(&rows), ["http://a.test/v", "http://a.test/v"]);
    assert_ne!(rows[0].id, rows[1].id);
    let d = cache.object_detail(&rows[0].id).await.unwrap();
    assert_eq!(d.vary, ["accept-language"]);
    assert_eq!(d.variants, [rows[1].clone()]);

    assert!(cache.object_detail("not an id").await.is_none());
    assert!(cache.object_detail(&ObjectId(1).to_hex()).await.is_none());
    // The vary marker is not a response.
    let marker = key_of(&en).id().to_hex();
    assert!(cache.object_detail(&marker).await.is_none());

    // After a restart: nothing in memory, everything found by the scan is
    // listed once described, and details come from the files' heads.
    let before = cache.browse(&BrowseQuery::default());
    drop(cache);
    let cache = Cache::open(config(dir.path())).unwrap();
    wait_until_browsable(&cache).await;
    let after = cache.browse(&BrowseQuery::default());
    let zeroed: Vec<ObjectSummary> = before
        .iter()
        .map(|s| ObjectSummary {
            hits: 0,
            ..s.clone()
        })
        .collect();
    assert_eq!(after, zeroed);
    let page_row = cache.browse(&query("/page", false, BrowseOrder::Recent, 10));
    let detail = cache.object_detail(&page_row[0].id).await.unwrap();
    check_page(detail, &page_row[0]);
    // Hits on objects read from disk count too.
    serve(&cache, "http://a.test/page").await;
    assert_eq!(hits_of(&cache, "http://a.test/page"), 1);
}

#[tokio::test]
async fn purged_objects_leave_the_browser() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(config(dir.path())).unwrap();
    four_objects(&cache).await;
    let en = get("http://a.test/v", &[("accept-language", "en")]);
    let fr = get("http://a.test/v", &[("accept-language", "fr")]);
    let vary = ok(&[("cache-control", "max-age=60"), ("vary", "Accept-Language")]);
    store(&cache, &en, &vary, b"hello").await;
    store(&cache, &fr, &vary, b"bonjour").await;

    // One object, by its id.
    let one = cache.browse(&query("/docs/one", false, BrowseOrder::Recent, 10));
    assert!(cache.purge_object(&one[0].id).await);
    assert!(
        cache
            .browse(&query("/docs/one", false, BrowseOrder::Recent, 10))
            .is_empty()
    );
    let req = get("http://a.test/docs/one", &[]);
    assert!(matches!(
        cache.lookup(&req, &key_of(&req)).await,
        Lookup::Miss(MissKind::UriMiss)
    ));
    assert!(!cache.purge_object(&one[0].id).await);
    assert!(!cache.purge_object("zz").await);

    // A URL, by its key (as PURGE does): the marker and every variant.
    let variants = cache.browse(&query("/v", false, BrowseOrder::Recent, 10));
    assert_eq!(variants.len(), 2);
    assert!(cache.purge(&key_of(&en)).await);
    assert!(
        cache
            .browse(&query("/v", false, BrowseOrder::Recent, 10))
            .is_empty()
    );
    for row in &variants {
        let id = ObjectId::from_hex(&row.id).unwrap();
        assert!(!disk::object_path(dir.path(), id).exists());
    }
    assert!(!disk::object_path(dir.path(), key_of(&en).id()).exists());
    assert_eq!(cache.browse(&BrowseQuery::default()).len(), 3);
}

#[test]
fn matching_ignores_ascii_case() {
    let url = b"http://a.test/Docs/x";
    assert!(url_matches(url, b"", false) && url_matches(url, b"", true));
    assert!(url_matches(url, b"docs", false));
    assert!(url_matches(url, b"HTTP://A.TEST/d", true));
    assert!(!url_matches(url, b"docs", true));
    assert!(!url_matches(url, b"http://a.test/Docs/x/more", true));
    assert!(!url_matches(url, b"http://a.test/Docs/x/more", false));
}
