//! A real browser through the proxy: headless Chromium configured with
//! `--proxy-server` loads a page (and its stylesheet) from a local origin.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use common::*;

fn chromium() -> &'static str {
    for candidate in [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ] {
        if std::path::Path::new(candidate).exists() {
            return candidate;
        }
    }
    panic!("Chromium is required for this test (scripts/test.sh installs it)");
}

/// How Chromium is told to use the proxy.
enum Via {
    ProxyServer(SocketAddr),
    Pac(String),
    Direct,
}

/// Loads `url` in headless Chromium and returns the DOM after scripts ran.
fn dump_dom(via: Via, url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(match via {
            Via::ProxyServer(proxy) => vec![format!("--proxy-server=http://{proxy}")],
            Via::Pac(url) => vec![format!("--proxy-pac-url={url}")],
            Via::Direct => vec!["--no-proxy-server".to_string()],
        })
        // Chromium never proxies loopback unless told not to bypass it.
        .arg("--proxy-bypass-list=<-loopback>")
        .arg("--virtual-time-budget=5000")
        .arg("--dump-dom")
        .arg(url)
        .output()
        .expect("run chromium");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn chromium_loads_a_page_and_its_stylesheet_through_the_proxy() {
    let origin = Origin::start(|req| match req.path.as_str() {
        "/style.css" => Reply::new(200)
            .header("content-type", "text/css")
            .body("body { color: rgb(1, 2, 3) }"),
        "/favicon.ico" => Reply::new(404),
        _ => Reply::html(
            "<!DOCTYPE html><html><head><title>Through Ferry</title>\
             <link rel=stylesheet href=/style.css></head>\
             <body><p id=msg>loaded</p><script>\
             document.getElementById('msg').textContent = \
             'color=' + getComputedStyle(document.body).color;</script></body></html>",
        ),
    })
    .await;
    let proxy = proxy(&["--no-cache"]);

    let (proxy_addr, url) = (proxy.addr(), origin.url("/index.html"));
    let dom = tokio::task::spawn_blocking(move || dump_dom(Via::ProxyServer(proxy_addr), &url))
        .await
        .unwrap();
    assert!(
        dom.contains("color=rgb(1, 2, 3)"),
        "the page or its stylesheet did not load: {dom}"
    );
    assert_eq!(origin.count("/index.html"), 1);
    assert_eq!(origin.count("/style.css"), 1);
    // Both went through the proxy: the origin saw our Via on each.
    for r in origin
        .requests()
        .iter()
        .filter(|r| r.path != "/favicon.ico")
    {
        assert_eq!(r.header("via"), Some("1.1 ferry"), "{}", r.path);
    }
    let log = proxy.wait_stdout_lines(2, Duration::from_secs(5));
    assert!(log.iter().any(|l| l.contains("/style.css")), "{log:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn chromium_configured_by_the_proxy_pac_file_uses_the_proxy() {
    // Chromium never sends loopback URLs to a PAC-chosen proxy, so the page is
    // on a name only the proxy answers for: a denied domain gets its refusal page.
    let proxy = proxy(&["--no-cache", "--deny-domain", "pac-check.test"]);
    let pac = format!("{}/proxy.pac", proxy.url());
    let dom =
        tokio::task::spawn_blocking(move || dump_dom(Via::Pac(pac), "http://pac-check.test/page"))
            .await
            .unwrap();
    assert!(
        dom.contains("pac-check.test matches deny rule"),
        "Chromium did not go through the proxy: {dom}"
    );
    let log = proxy.wait_stdout_lines(2, Duration::from_secs(5));
    assert!(
        log.iter().any(|l| l.contains("\"GET /proxy.pac ")),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("\"GET http://pac-check.test/page ")),
        "{log:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_refreshes_itself_from_status_json() {
    let proxy = proxy(&["--no-cache"]);
    let url = format!("{}/", proxy.url());
    let dom = tokio::task::spawn_blocking(move || dump_dom(Via::Direct, &url))
        .await
        .unwrap();
    // Rendered when no request had been answered yet; the script's refresh
    // shows the dashboard request itself (and its own status.json fetches).
    let marker = "id=\"requests\">";
    let start = dom.find(marker).expect("requests row") + marker.len();
    let shown: u64 = dom[start..].split('<').next().unwrap().parse().unwrap();
    assert!(shown >= 1, "the dashboard never refreshed: {dom}");
}
