//! The operator's view: the dashboard in a real browser, `/api/stats`,
//! `/metrics` as a Prometheus parser reads it, the cache browser's purge,
//! and who may see and do what.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use http::Method;

/// An origin with a small cacheable page, a large cacheable object and an
/// uncacheable one.
async fn origin() -> Origin {
    Origin::start(|req| match req.path.as_str() {
        "/page" => Reply::html(page("Cached page")).header("cache-control", "max-age=300"),
        "/big" => Reply::new(200)
            .header("cache-control", "max-age=300")
            .header("content-type", "application/octet-stream")
            .body(vec![b'x'; 200 * 1024]),
        _ => Reply::new(200)
            .header("cache-control", "no-store")
            .body("fresh every time"),
    })
    .await
}

/// Misses, hits, an uncacheable fetch, two refusals and an unreachable
/// origin.
async fn traffic(client: &ProxyClient, origin: &Origin) {
    for _ in 0..3 {
        assert_eq!(client.get(&origin.url("/page")).await.status, 200);
    }
    for _ in 0..2 {
        assert_eq!(client.get(&origin.url("/big")).await.status, 200);
    }
    assert_eq!(client.get(&origin.url("/private")).await.status, 200);
    for _ in 0..2 {
        let refused = client.get("http://blocked.test/x").await;
        assert_eq!(refused.status, 403);
    }
    let unreachable = client.get("http://127.0.0.1:1/down").await;
    assert_eq!(unreachable.status, 502);
}

async fn stats(client: &ProxyClient, proxy: &Proxy) -> serde_json::Value {
    let resp = client.get(&format!("{}/api/stats", proxy.url())).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    serde_json::from_str(&resp.text()).unwrap()
}

/// Waits until the dashboard's figures include `n` requests (they are fed
/// by the access log's writer, a moment after each response).
async fn wait_for_requests(client: &ProxyClient, proxy: &Proxy, n: u64) -> serde_json::Value {
    for _ in 0..100 {
        let s = stats(client, proxy).await;
        if s["summary"]["since_start"]["requests"].as_u64() >= Some(n) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the dashboard never counted {n} requests");
}

#[tokio::test(flavor = "multi_thread")]
async fn api_stats_and_metrics_move_with_traffic() {
    let origin = origin().await;
    let proxy = proxy(&["--deny-domain", "blocked.test", "--max-concurrent", "8"]);
    let client = ProxyClient::new(proxy.addr());
    traffic(&client, &origin).await;

    let s = wait_for_requests(&client, &proxy, 9).await;
    let since = &s["summary"]["since_start"];
    assert_eq!(since["requests"], 9, "{s:#}");
    assert_eq!(since["hits"], 3, "2 of /page, 1 of /big: {s:#}");
    // Of the 6 answered with a body (not the refusals or the failure).
    assert_eq!(since["request_hit_ratio"], 0.5, "{s:#}");
    assert!(since["bytes_from_cache"].as_u64().unwrap() > 200 * 1024);
    assert!(since["byte_hit_ratio"].as_f64().unwrap() > 0.45, "{s:#}");
    assert_eq!(since["bytes_saved"], since["bytes_from_cache"]);
    assert_eq!(since["blocked"], 2);
    assert_eq!(since["errors"], 1);
    assert!(since["latency_p95_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(
        s["summary"]["last_5m"], *since,
        "all of it in the last 5 minutes"
    );
    assert_eq!(s["admin"], true, "loopback is an admin client by default");
    let recent = s["recent"].as_array().unwrap();
    assert_eq!(recent.len(), 9);
    assert_eq!(recent[0]["url"], "http://127.0.0.1:1/down", "newest first");
    assert_eq!(recent[0]["outcome"], "error");
    let outcomes: Vec<&str> = recent
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    for o in ["fresh_hit", "miss", "uncacheable", "blocked", "error"] {
        assert!(outcomes.contains(&o), "{o} missing from {outcomes:?}");
    }
    assert_eq!(s["top_hosts"]["by_requests"][0]["host"], "127.0.0.1");
    assert_eq!(s["top_blocked"][0]["host"], "blocked.test");
    assert_eq!(s["top_blocked"][0]["requests"], 2);
    let hits_series = &s["series"]["requests_per_second"][0];
    assert_eq!(hits_series[0], "fresh_hit");
    assert_eq!(hits_series[1].as_array().unwrap().len(), 90);
    assert_eq!(s["fetch"]["slots"], 8);
    assert!(s["cache"]["objects"].as_u64().unwrap() >= 2, "{s:#}");
    // The old name answers the same document.
    let old = client.get(&format!("{}/status.json", proxy.url())).await;
    let old: serde_json::Value = serde_json::from_str(&old.text()).unwrap();
    assert_eq!(old["summary"]["since_start"]["requests"], 9);

    let text = client.get(&format!("{}/metrics", proxy.url())).await.text();
    check_openmetrics(&text);
    let sample = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{name} missing from\n{text}"))
    };
    assert_eq!(
        sample("ferry_requests_total{outcome=\"fresh_hit\",code_class=\"2xx\"}"),
        3.0
    );
    assert_eq!(
        sample("ferry_requests_total{outcome=\"miss\",code_class=\"2xx\"}"),
        2.0
    );
    assert_eq!(
        sample("ferry_requests_total{outcome=\"uncacheable\",code_class=\"2xx\"}"),
        1.0
    );
    assert_eq!(
        sample("ferry_requests_total{outcome=\"blocked\",code_class=\"4xx\"}"),
        2.0
    );
    assert_eq!(sample("ferry_blocked_total{rule_kind=\"domain\"}"), 2.0);
    assert_eq!(
        sample("ferry_upstream_errors_total{cause=\"connect\"}"),
        1.0
    );
    assert!(sample("ferry_response_bytes_total{source=\"cache\"}") > 200.0 * 1024.0);
    assert!(sample("ferry_response_bytes_total{source=\"origin\"}") > 200.0 * 1024.0);
    assert_eq!(
        sample("ferry_request_duration_seconds_count{outcome=\"fresh_hit\"}"),
        3.0
    );
    assert_eq!(sample("ferry_origin_fetch_duration_seconds_count"), 3.0);
    assert_eq!(sample("ferry_fetch_slots"), 8.0);
    assert_eq!(sample("ferry_fetch_slots_in_use"), 0.0);
    assert_eq!(sample("ferry_fetch_queue_length"), 0.0);
    assert!(sample("ferry_connections_open") >= 1.0);
    assert!(sample("ferry_cache_objects") >= 2.0);
    assert_eq!(
        sample(&format!(
            "ferry_build_info{{version=\"{}\",name=\"ferry\"}}",
            env!("CARGO_PKG_VERSION")
        )),
        1.0
    );

    // `ferry top` shows the same reading in a terminal.
    let top = Command::new(ferry())
        .args(["top", "--once", "--proxy", &proxy.url()])
        .clear_proxy_env()
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&top.stdout);
    assert!(
        top.status.success(),
        "{screen}{}",
        String::from_utf8_lossy(&top.stderr)
    );
    let since_start: Vec<&str> = screen
        .lines()
        .find(|l| l.starts_with("since start"))
        .unwrap_or_else(|| panic!("{screen}"))
        .split_whitespace()
        .collect();
    assert_eq!(&since_start[2..4], ["9", "50.0%"], "{screen}");
    assert!(screen.contains("blocked.test"), "{screen}");
    assert!(screen.contains("http://127.0.0.1:1/down"), "{screen}");
    assert!(!screen.contains('\x1b'), "--once prints no escape codes");

    // Counters move with traffic.
    client.get(&origin.url("/page")).await;
    assert_eq!(
        proxy.metric("ferry_requests_total{outcome=\"fresh_hit\",code_class=\"2xx\"}"),
        Some(4)
    );
}

/// Parses `/metrics` with the Prometheus client library's strict
/// OpenMetrics parser (Debian's python3-prometheus-client).
fn check_openmetrics(text: &str) {
    let script = "import sys\n\
from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
families = list(text_string_to_metric_families(sys.stdin.read()))\n\
print(len(families))\n";
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (scripts/test.sh installs python3-prometheus-client)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "/metrics is not valid OpenMetrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let families: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(families > 20, "{families} metric families");
}

/// The CSRF token in a page's purge form.
fn csrf_token(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a purge form with a token");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

async fn post_purge(client: &ProxyClient, proxy: &Proxy, body: String) -> TestResponse {
    client
        .send(
            Method::POST,
            &format!("{}/cache/purge", proxy.url()),
            &[("content-type", "application/x-www-form-urlencoded")],
            body,
        )
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_purge_needs_the_pages_token_and_then_the_next_request_is_a_miss() {
    let origin = origin().await;
    let proxy = proxy(&[]);
    let client = ProxyClient::new(proxy.addr());
    let url = origin.url("/page");
    client.get(&url).await;
    assert!(cached(&client.get(&url).await));

    let search = client
        .get(&format!("{}/cache?q=%2Fpage", proxy.url()))
        .await;
    assert_eq!(search.status, 200);
    let page = search.text();
    assert!(page.contains(&url), "{page}");
    let token = csrf_token(&page);

    // A forged form (another site's page cannot read the token) is refused.
    let forged = post_purge(&client, &proxy, form(&[("csrf", "0000"), ("url", &url)])).await;
    assert_eq!(forged.status, 403);
    assert!(forged.text().contains("token"), "{}", forged.text());
    let missing = post_purge(&client, &proxy, form(&[("url", &url)])).await;
    assert_eq!(missing.status, 403);
    assert!(cached(&client.get(&url).await), "still stored");

    let purged = post_purge(
        &client,
        &proxy,
        form(&[
            ("csrf", &token),
            ("url", &url),
            ("back", "/cache?q=%2Fpage"),
        ]),
    )
    .await;
    assert_eq!(purged.status, 303);
    let location = purged.header("location").unwrap().to_string();
    assert!(
        location.starts_with("/cache?q=%2Fpage&purged="),
        "{location}"
    );
    let after = client.get(&url).await;
    assert_eq!(after.header("x-cache"), Some("MISS"));
    assert_eq!(origin.count("/page"), 2);

    // The object page shows headers, freshness and hits.
    client.get(&url).await;
    let search = client
        .get(&format!("{}/cache?q=%2Fpage", proxy.url()))
        .await
        .text();
    let at = search.find("/cache/object?id=").unwrap();
    let link = &search[at..];
    let link = &link[..link.find('"').unwrap()];
    let object = client.get(&format!("{}{link}", proxy.url())).await;
    assert_eq!(object.status, 200);
    let object = object.text();
    for expected in [
        "max-age=300",
        "Freshness lifetime",
        "300 s",
        "Fresh now",
        "yes",
    ] {
        assert!(
            object.contains(expected),
            "{expected} missing from {object}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_is_for_allowed_clients_and_its_detail_and_actions_for_admins() {
    let origin = origin().await;
    // Loopback may use the proxy but is not an admin here.
    let proxy = proxy(&[
        "--allow-client",
        "127.0.0.1/32",
        "--admin-client",
        "192.0.2.1/32",
    ]);
    let startup_line = format!("ferry: dashboard at http://{}/", proxy.addr());
    for _ in 0..100 {
        if proxy.stderr().contains(&startup_line) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(proxy.stderr().contains(&startup_line), "{}", proxy.stderr());
    let client = ProxyClient::new(proxy.addr());
    let url = origin.url("/page");
    client.get(&url).await;
    assert!(cached(&client.get(&url).await));

    let stranger = ProxyClient::new(proxy.addr()).bind("127.0.0.2".parse().unwrap());
    for path in ["/", "/api/stats", "/metrics", "/cache"] {
        let resp = stranger.get(&format!("{}{path}", proxy.url())).await;
        assert_eq!(resp.status, 403, "{path}");
    }

    let dashboard = client.get(&format!("{}/", proxy.url())).await;
    assert_eq!(dashboard.status, 200);
    let html = dashboard.text();
    assert!(html.contains("id=\"tile-requests\""), "{html}");
    assert!(html.contains("admin clients only"), "{html}");
    assert!(!html.contains(&url), "a non-admin sees no URLs: {html}");
    let s = stats(&client, &proxy).await;
    assert_eq!(s["admin"], false);
    assert!(s["recent"].is_null() && s["top_hosts"].is_null(), "{s:#}");
    assert!(s["fetch"]["clients"].is_null(), "{s:#}");

    for path in ["/cache", "/cache?q=page"] {
        let resp = client.get(&format!("{}{path}", proxy.url())).await;
        assert_eq!(resp.status, 403, "{path}");
        assert!(resp.text().contains("admin-client"), "{}", resp.text());
    }
    let purge = post_purge(&client, &proxy, form(&[("csrf", "x"), ("url", &url)])).await;
    assert_eq!(purge.status, 403);
    assert!(
        cached(&client.get(&url).await),
        "the object is still stored"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn chromium_shows_the_dashboard_filled_in_and_purges_from_the_cache_browser() {
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser-driver");
    assert!(
        driver.join("node_modules/puppeteer-core").exists(),
        "the browser driver is not installed: npm ci --prefix tests/browser-driver (scripts/test.sh does)"
    );
    let origin = origin().await;
    let proxy = proxy(&["--deny-domain", "blocked.test"]);
    let client = ProxyClient::new(proxy.addr());
    traffic(&client, &origin).await;
    wait_for_requests(&client, &proxy, 9).await;

    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let _ = std::fs::remove_file(&screenshot);
    let page_url = origin.url("/page");
    let (dashboard, shot, target) = (
        format!("{}/", proxy.url()),
        screenshot.clone(),
        page_url.clone(),
    );
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(driver.join("dashboard.mjs"))
            .arg(chromium())
            .arg(&dashboard)
            .arg(&shot)
            .arg(&target)
            .clear_proxy_env()
            .output()
            .expect("node")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "driver output: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(seen["error"].is_null(), "{seen:#}");

    let tiles = &seen["tiles"];
    assert_eq!(tiles["requests"], "9", "{seen:#}");
    assert_eq!(tiles["request_hit_ratio"], "50.0%", "{seen:#}");
    assert_eq!(tiles["blocked"], "2");
    assert_eq!(tiles["errors"], "1");
    assert!(
        tiles["bytes_saved"].as_str().unwrap().ends_with("KiB"),
        "{seen:#}"
    );
    assert!(
        tiles["latency_p50_ms"].as_str().unwrap().ends_with(" ms"),
        "{seen:#}"
    );
    let drawn = |chart: &str| seen["charts"][chart]["drawn"].to_string();
    assert!(drawn("requests").contains("fresh hit"), "{seen:#}");
    assert!(drawn("requests").contains("blocked"), "{seen:#}");
    assert!(drawn("bytes").contains("from cache"), "{seen:#}");
    assert_eq!(seen["charts"]["fetch"]["series"], 2);
    let recent = seen["recent"].as_array().unwrap();
    assert!(recent.len() >= 9, "{seen:#}");
    assert!(
        recent
            .iter()
            .any(|row| row[3] == page_url.as_str() && row[5] == "fresh_hit"),
        "{seen:#}"
    );
    assert_eq!(seen["top_requests"][0][0], "127.0.0.1", "{seen:#}");
    assert_eq!(seen["top_blocked"][0][0], "blocked.test", "{seen:#}");
    assert!(
        seen["largest"][0][0].as_str().unwrap().ends_with("/big"),
        "{seen:#}"
    );
    assert!(
        seen["most_hit"][0][0].as_str().unwrap().ends_with("/page"),
        "{seen:#}"
    );
    assert!(seen["rules"].as_str().unwrap().contains("blocked.test"));
    let png = std::fs::read(&screenshot).expect("the screenshot was saved");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    eprintln!("dashboard screenshot: {}", screenshot.display());

    // The purge clicked in the cache browser removed the object.
    assert_eq!(seen["search_rows"][0], page_url.as_str(), "{seen:#}");
    let after = &seen["after_purge"];
    assert!(
        after["message"].as_str().unwrap().contains("Purged"),
        "{seen:#}"
    );
    assert_eq!(after["rows"], 0, "{seen:#}");
    let next = client.get(&page_url).await;
    assert_eq!(next.header("x-cache"), Some("MISS"));
    assert_eq!(origin.count("/page"), 2);
}
