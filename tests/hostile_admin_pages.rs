//! The proxy's own pages as an attacker's page in the admin's browser would
//! reach them: through DNS rebinding (a name that now resolves to the
//! proxy, so the browser sends that name as `Host`), from a foreign
//! `Origin`, framed by another site, and through the purge form's `back=`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;

/// Sends `request` (with `{host}` replaced by the proxy's `ip:port`) to the
/// proxy as it is, the way a browser talking to it directly would.
async fn direct(proxy: SocketAddr, request: &str) -> (u16, String) {
    let request = request.replace("{host}", &proxy.to_string());
    let (bytes, _) = raw_exchange(proxy, request.as_bytes(), Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn get(path: &str, host: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
}

fn purge_post(host: &str, origin: Option<&str>, form: &str) -> String {
    let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
    format!(
        "POST /cache/purge HTTP/1.1\r\nHost: {host}\r\n{origin}Content-Type: application/x-www-form-urlencoded\r\n\
Content-Length: {}\r\nConnection: close\r\n\r\n{form}",
        form.len()
    )
}

/// The CSRF token from the cache browser, fetched the legitimate way.
async fn csrf_token(proxy: SocketAddr) -> String {
    let (status, page) = direct(proxy, &get("/cache?q=", "{host}")).await;
    assert_eq!(status, 200, "{page}");
    let at = page.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    page[at..at + 32].to_string()
}

fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split("\r\n\r\n").next().unwrap_or("");
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rebound_name_gets_no_page_no_token_and_no_purge() {
    let origin =
        Origin::start(|_| Reply::text("stored").header("cache-control", "max-age=600")).await;
    let proxy = proxy(&[]);
    let addr = proxy.addr();
    let client = ProxyClient::new(addr);
    let url = origin.url("/object");
    assert_eq!(client.get(&url).await.status, 200);
    assert_eq!(client.get(&url).await.header("x-cache"), Some("HIT"));
    let token = csrf_token(addr).await;
    let evil = format!("evil.example:{}", addr.port());

    for path in [
        "/api/stats",
        "/status.json",
        "/",
        "/cache?q=",
        "/metrics",
        "/proxy.pac",
    ] {
        let (status, page) = direct(addr, &get(path, &evil)).await;
        assert_eq!(status, 421, "{path} answered a rebound name: {page}");
        for secret in ["\"admin\"", &token, "/object", "PROXY "] {
            assert!(!page.contains(secret), "{path} leaked {secret}: {page}");
        }
    }
    let form = format!("csrf={token}&url={}&back=%2Fcache", url.replace(':', "%3A"));
    let (status, page) = direct(addr, &purge_post(&evil, Some("http://evil.example"), &form)).await;
    assert_eq!(status, 421, "{page}");
    // The right Host, but the form was posted by another site's page.
    let (status, page) = direct(
        addr,
        &purge_post("{host}", Some("http://evil.example"), &form),
    )
    .await;
    assert_eq!(status, 403, "{page}");
    let (status, page) = direct(addr, &purge_post("{host}", Some("null"), &form)).await;
    assert_eq!(status, 403, "{page}");
    assert_eq!(
        client.get(&url).await.header("x-cache"),
        Some("HIT"),
        "nothing was purged"
    );
    // The proxy's own page may post it.
    let own = format!("http://{addr}");
    let (status, page) = direct(addr, &purge_post("{host}", Some(&own), &form)).await;
    assert_eq!(status, 303, "{page}");
    assert_eq!(client.get(&url).await.header("x-cache"), Some("MISS"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_proxys_own_names_are_answered() {
    let proxy = proxy(&["--public-name", "proxy.school.lan"]);
    let addr = proxy.addr();
    let port = addr.port();
    for host in [
        addr.to_string(),
        format!("localhost:{port}"),
        format!("LOCALHOST.:{port}"),
        format!("proxy.school.lan:{port}"),
        format!("[::1]:{port}"),
        "127.0.0.1".to_string(),
    ] {
        let (status, page) = direct(addr, &get("/api/stats", &host)).await;
        assert_eq!(status, 200, "{host}: {page}");
    }
    // HTTP/1.0 tools and health checks may send no Host at all; a
    // balancer's health check may name anything (it learns nothing).
    let (status, _) = direct(addr, "GET /healthz HTTP/1.0\r\n\r\n").await;
    assert_eq!(status, 200);
    let (status, _) = direct(addr, &get("/healthz", "ferry-health")).await;
    assert_eq!(status, 200);
    // The PAC file names the proxy as it was asked for, never a foreign name.
    let (status, pac) = direct(
        addr,
        &get("/proxy.pac", &format!("proxy.school.lan:{port}")),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        pac.contains(&format!("PROXY proxy.school.lan:{port}")),
        "{pac}"
    );
    // A bad --public-name is refused at start.
    let out = std::process::Command::new(ferry())
        .args([
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--public-name",
            "bad name;",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("public"),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn own_pages_cannot_be_framed_or_sniffed_and_run_only_their_own_files() {
    let origin =
        Origin::start(|_| Reply::text("stored").header("cache-control", "max-age=600")).await;
    let proxy = proxy(&[]);
    let addr = proxy.addr();
    let client = ProxyClient::new(addr);
    assert_eq!(client.get(&origin.url("/o")).await.status, 200);
    for path in ["/", "/cache?q=", "/ca", "/api/stats", "/no-such-page"] {
        let (_, page) = direct(addr, &get(path, "{host}")).await;
        assert_eq!(header(&page, "x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(
            header(&page, "x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        // No address of the proxy leaves for another site; `same-origin`
        // (not `no-referrer`) on its own pages so its forms carry their Origin.
        let referrer = header(&page, "referrer-policy");
        assert!(
            matches!(referrer, Some("same-origin" | "no-referrer")),
            "{path}: {referrer:?}"
        );
        let csp = header(&page, "content-security-policy").unwrap_or("");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{path}: {csp}"
        );
    }
    // The dashboard's script and style are the proxy's own files.
    let (_, page) = direct(addr, &get("/", "{host}")).await;
    assert!(page.contains("<script src=\"/assets/"), "{page}");
    assert!(!page.contains("<style>"), "inline style: {page}");
    for asset in ["/assets/dashboard.js", "/assets/ferry.css"] {
        let (status, body) = direct(addr, &get(asset, "{host}")).await;
        assert_eq!(status, 200, "{asset}: {body}");
    }
    // An error page for a site the proxy fetched for is not framable either.
    let refused = client.get("http://127.0.0.1:1/down").await;
    assert_eq!(refused.status, 502);
    assert_eq!(refused.header("x-frame-options"), Some("DENY"));
    let csp = refused.header("content-security-policy").unwrap_or("");
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'none'"),
        "{csp}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_purge_forms_way_back_stays_on_the_proxy() {
    let origin =
        Origin::start(|_| Reply::text("stored").header("cache-control", "max-age=600")).await;
    let proxy = proxy(&[]);
    let addr = proxy.addr();
    let client = ProxyClient::new(addr);
    let url = origin.url("/b");
    assert_eq!(client.get(&url).await.status, 200);
    let token = csrf_token(addr).await;
    for back in [
        "%2F%5Cevil.example%2F",
        "%2F%2Fevil.example%2F",
        "https%3A%2F%2Fevil.example%2F",
        "%2F%09%2Fevil.example",
        "%5C%5Cevil.example",
    ] {
        assert_eq!(client.get(&url).await.status, 200);
        let form = format!("csrf={token}&url={}&back={back}", url.replace(':', "%3A"));
        let (status, page) = direct(addr, &purge_post("{host}", None, &form)).await;
        assert_eq!(status, 303, "{page}");
        let location = header(&page, "location").unwrap();
        assert!(
            location.starts_with("/cache?"),
            "back={back} led to {location}"
        );
    }
}
