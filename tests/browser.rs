//! A real browser through the proxy: headless Chromium configured with
//! `--proxy-server` loads a page (and its stylesheet) from a local origin.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

/// How Chromium is told to use the proxy.
enum Via {
    ProxyServer(SocketAddr),
    Pac(String),
    Direct,
}

/// Loads `url` in headless Chromium and returns the DOM after scripts ran.
fn dump_dom(via: Via, url: &str) -> String {
    dump_dom_as(via, url, None)
}

/// As [`dump_dom`], for a user whose home is `home` (Chromium on Linux
/// reads the certificates it trusts from `$HOME/.pki/nssdb`).
fn dump_dom_as(via: Via, url: &str, home: Option<&Path>) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut command = Command::new(chromium());
    if let Some(home) = home {
        command.env("HOME", home);
    }
    let out = command
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
async fn the_dashboard_refreshes_itself_from_api_stats() {
    let origin = Origin::start(|_| Reply::new(200).body("hello")).await;
    let proxy = proxy(&["--no-cache"]);
    ProxyClient::new(proxy.addr())
        .get(&origin.url("/one"))
        .await;
    let url = format!("{}/", proxy.url());
    let dom = tokio::task::spawn_blocking(move || dump_dom(Via::Direct, &url))
        .await
        .unwrap();
    // The script marks the page once it has fetched /api/stats and updated
    // the figures from it.
    assert!(
        dom.contains("<body data-refreshed="),
        "the dashboard never refreshed: {dom}"
    );
    assert!(dom.contains("id=\"tile-requests\">1<"), "{dom}");
    assert!(dom.contains("<svg"), "{dom}");
}

/// A user's NSS database trusting `ca_pem`, made with the real `certutil`
/// as the proxy's /ca page tells users to.
fn trust_in_nss(home: &Path, ca_pem: &Path) {
    let db = home.join(".pki/nssdb");
    std::fs::create_dir_all(&db).unwrap();
    let db = format!("sql:{}", db.display());
    let run = |args: &[&str]| {
        let out = Command::new("certutil")
            .args(args)
            .output()
            .expect("certutil is required (scripts/test.sh installs libnss3-tools)");
        assert!(out.status.success(), "certutil {args:?}: {out:?}");
    };
    run(&["-N", "--empty-password", "-d", &db]);
    run(&[
        "-A",
        "-d",
        &db,
        "-t",
        "C,,",
        "-n",
        "Ferry local CA",
        "-i",
        ca_pem.to_str().unwrap(),
    ]);
}

/// A 1×1 PNG.
const PIXEL: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

#[tokio::test(flavor = "multi_thread")]
async fn chromium_trusting_the_ca_loads_an_https_page_twice_the_second_time_from_the_cache() {
    let origin_ca = TestCa::new();
    let origin = Origin::start_tls(&origin_ca, |req| {
        let fresh = |r: Reply| r.header("cache-control", "max-age=600");
        match req.path.as_str() {
            "/style.css" => fresh(
                Reply::new(200)
                    .header("content-type", "text/css")
                    .body("body { color: rgb(4, 5, 6) }"),
            ),
            "/pixel.png" => fresh(
                Reply::new(200)
                    .header("content-type", "image/png")
                    .body(PIXEL),
            ),
            "/favicon.ico" => Reply::new(404),
            _ => fresh(Reply::html(
                "<!DOCTYPE html><html><head><title>Secure</title>\
                 <link rel=stylesheet href=/style.css></head>\
                 <body><p id=msg>loading</p><img id=img src=/pixel.png><script>\
                 window.onload = () => { document.getElementById('msg').textContent = \
                 'color=' + getComputedStyle(document.body).color + \
                 ' width=' + document.getElementById('img').naturalWidth; };\
                 </script></body></html>",
            )),
        }
    })
    .await;
    let home = tempfile::tempdir().unwrap();
    let ca_dir = home.path().join("ferry-ca");
    let init = Command::new(ferry())
        .args(["ca", "--ca-dir", ca_dir.to_str().unwrap(), "init"])
        .output()
        .unwrap();
    assert!(init.status.success(), "{init:?}");
    trust_in_nss(home.path(), &ca_dir.join("ca.pem"));
    let port = origin.addr().port().to_string();
    let proxy = proxy(&[
        "--intercept-tls",
        "--ca-dir",
        ca_dir.to_str().unwrap(),
        "--upstream-ca",
        origin_ca.pem_path().to_str().unwrap(),
        "--connect-port",
        &port,
    ]);
    let url = origin.url("/index.html");
    for round in 0..2 {
        let (addr, url, home) = (proxy.addr(), url.clone(), home.path().to_path_buf());
        let dom = tokio::task::spawn_blocking(move || {
            dump_dom_as(Via::ProxyServer(addr), &url, Some(&home))
        })
        .await
        .unwrap();
        assert!(
            dom.contains("color=rgb(4, 5, 6) width=1"),
            "round {round}: the page, its stylesheet or its image did not load: {dom}\n{}",
            proxy.stderr()
        );
    }
    // The second load came from Ferry's cache: the origin saw each once, and
    // the access log has hits for the https:// URLs.
    for path in ["/index.html", "/style.css", "/pixel.png"] {
        assert_eq!(origin.count(path), 1, "{path}");
    }
    let log = proxy.wait_stdout_lines(8, Duration::from_secs(5));
    for path in ["/index.html", "/style.css", "/pixel.png"] {
        let hit = format!("GET {} ", origin.url(path));
        assert!(
            log.iter().any(|l| l.contains(&hit) && l.ends_with("HIT")),
            "{path}: {log:#?}"
        );
    }
}
