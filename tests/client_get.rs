//! `ferry get` end to end: the real binary fetches from a local origin through
//! a real `ferry proxy` and saves files into a temporary directory. Covers
//! naming by title (charsets, entities, no title, hostile titles), collisions,
//! non-HTML names, https in absolute form, proxy selection from the
//! environment and proxy credentials, cache status, exit codes and messages,
//! and several URLs in flight at once (observed at the origin with gates).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

/// Generous bound for waits that should end quickly; never a timing assertion.
const LIMIT: Duration = Duration::from_secs(60);

/// The names in `dir`, sorted; fails if a temporary `.part` file was left.
fn files(dir: &Path) -> Vec<String> {
    let names = dir_names(dir);
    assert!(
        !names.iter().any(|n| n.ends_with(".part")),
        "temporary file left behind: {names:?}"
    );
    names
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}; have {:?}", files(dir)))
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_are_named_after_their_titles_in_their_charsets() {
    let origin = Origin::start(|req| match req.path.as_str() {
        "/plain" => Reply::html(page("Example Domain")),
        "/entities" => Reply::html(page("Tom &amp; Jerry &lt;3 &eacute;t&eacute; &#x263A;")),
        // ISO-8859-1 from the Content-Type header.
        "/latin1-header" => Reply::new(200)
            .header("content-type", "text/html; charset=ISO-8859-1")
            .body(&b"<html><head><title>Caf\xe9 cr\xe8me</title></head></html>"[..]),
        // ISO-8859-1 from <meta http-equiv>, no charset in the header.
        "/latin1-meta" => Reply::new(200)
            .header("content-type", "text/html")
            .body(
                &b"<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=iso-8859-1\">\
<title>Fran\xe7ais \xe0 la carte</title></head></html>"[..],
            ),
        // Shift_JIS declared by <meta charset>: \x93\xfa\x96\x7b\x8c\xea is 日本語.
        "/sjis" => Reply::new(200)
            .header("content-type", "text/html")
            .body(
                &b"<html><head><meta charset=\"Shift_JIS\"><title>\x93\xfa\x96\x7b\x8c\xea\x82\xcc\x83\x79\x81\x5b\x83\x57</title></head></html>"[..],
            ),
        // No Content-Type at all: sniffed as HTML.
        "/untyped" => Reply::new(200).body(page("Sniffed")),
        "/docs/intro" => Reply::html("<html><body>no title here</body></html>"),
        "/blank" => Reply::html("<html><head><title>  \n </title></head></html>"),
        _ => Reply::new(404),
    })
    .await;
    let proxy = proxy(&[]);
    let dir = tempfile::tempdir().unwrap();
    let paths = [
        "/plain",
        "/entities",
        "/latin1-header",
        "/latin1-meta",
        "/sjis",
        "/untyped",
        "/docs/intro",
        "/blank",
    ];
    let run = ferry_get_paths(&proxy, dir.path(), &origin, &paths).await;
    assert_eq!(run.code, Some(0), "{}", run.both());

    let port = origin.addr().port();
    let mut want = vec![
        "Example Domain.html".to_string(),
        "Tom & Jerry _3 été ☺.html".to_string(),
        "Café crème.html".to_string(),
        "Français à la carte.html".to_string(),
        "日本語のページ.html".to_string(),
        "Sniffed.html".to_string(),
        format!("127.0.0.1_{port}_docs_intro.html"),
        format!("127.0.0.1_{port}_blank.html"),
    ];
    want.sort();
    assert_eq!(files(dir.path()), want, "{}", run.both());
    // The bytes are saved as sent, not re-encoded.
    assert_eq!(
        read(dir.path(), "Café crème.html"),
        b"<html><head><title>Caf\xe9 cr\xe8me</title></head></html>"
    );
    // One result line per URL, in the order given, each naming its file.
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), paths.len(), "{}", run.both());
    assert!(lines[0].starts_with(&origin.url("/plain")), "{}", lines[0]);
    assert!(
        lines[0].contains("/Example Domain.html  200 OK"),
        "{}",
        lines[0]
    );
    assert!(lines[4].contains("日本語のページ.html"), "{}", lines[4]);
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_titles_stay_inside_the_output_directory() {
    let long = "A".repeat(500);
    let long_title = long.clone();
    let origin = Origin::start(move |req| match req.path.as_str() {
        "/traversal" => Reply::html(page("../../etc/passwd")),
        "/backslash" => Reply::html(page("..\\..\\windows\\win.ini")),
        "/device" => Reply::html(page("CON")),
        "/long" => Reply::html(page(&long_title)),
        "/punct" => Reply::html(page("***???///")),
        "/dots" => Reply::html(page("...")),
        "/hidden" => Reply::html(page(".bashrc")),
        "/control" => Reply::html(page("tab\tnew&#10;line &#1;bell")),
        _ => Reply::new(404),
    })
    .await;
    let proxy = proxy(&[]);
    let outer = tempfile::tempdir().unwrap();
    let dir = outer.path().join("out");
    let paths = [
        "/traversal",
        "/backslash",
        "/device",
        "/long",
        "/punct",
        "/dots",
        "/hidden",
        "/control",
    ];
    let run = ferry_get_paths(&proxy, &dir, &origin, &paths).await;
    assert_eq!(run.code, Some(0), "{}", run.both());

    // Nothing escaped: the parent holds only the output directory.
    assert_eq!(files(outer.path()), ["out"]);
    let names = files(&dir);
    assert_eq!(names.len(), paths.len(), "{names:?}");
    for name in &names {
        assert!(
            std::fs::metadata(dir.join(name)).unwrap().is_file(),
            "{name}"
        );
        assert!(name.len() <= 120, "{name}: {} bytes", name.len());
        assert!(!name.starts_with('.'), "{name}");
        assert!(
            !name
                .chars()
                .any(|c| "/\\:*?\"<>|".contains(c) || c.is_control()),
            "{name:?}"
        );
    }
    let port = origin.addr().port();
    let expected_long = format!("{}.html", "A".repeat(115));
    let mut want = vec![
        "etc_passwd.html".to_string(),
        "windows_win.ini.html".to_string(),
        "CON_.html".to_string(),
        expected_long,
        format!("127.0.0.1_{port}_punct.html"),
        format!("127.0.0.1_{port}_dots.html"),
        "bashrc.html".to_string(),
        "tab new line bell.html".to_string(),
    ];
    want.sort();
    assert_eq!(names, want);
}

#[tokio::test(flavor = "multi_thread")]
async fn collisions_never_overwrite() {
    let gate = Gate::new();
    let held = gate.clone();
    let origin = Origin::start(move |req| match req.path.as_str() {
        "/same" => Reply::html(page("Same Title")),
        // Two different pages with one title, held so both are in flight together.
        "/twin-a" => Reply::html(page("Twin") + "<!-- a -->").gate(&held),
        "/twin-b" => Reply::html(page("Twin") + "<!-- b -->").gate(&held),
        _ => Reply::new(404),
    })
    .await;
    let proxy = proxy(&["--no-cache"]);
    let dir = tempfile::tempdir().unwrap();

    // A file already there is kept.
    std::fs::write(dir.path().join("Same Title.html"), "mine").unwrap();
    for _ in 0..2 {
        let run = ferry_get(&proxy, dir.path(), &[&origin.url("/same")]).await;
        assert_eq!(run.code, Some(0), "{}", run.both());
    }
    assert_eq!(read(dir.path(), "Same Title.html"), b"mine");
    assert_eq!(
        files(dir.path()),
        [
            "Same Title (2).html",
            "Same Title (3).html",
            "Same Title.html"
        ]
    );

    // Two jobs saving one title at the same moment.
    let (a, b) = (origin.url("/twin-a"), origin.url("/twin-b"));
    let mut child = get_command_via(&proxy.url(), dir.path(), &[&a, &b])
        .spawn()
        .unwrap();
    assert!(
        wait_until(LIMIT, || gate.waiting() == 2).await,
        "both requests should reach the origin"
    );
    gate.release(2);
    let status = tokio::time::timeout(LIMIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    let twins: Vec<Vec<u8>> = ["Twin.html", "Twin (2).html"]
        .iter()
        .map(|n| read(dir.path(), n))
        .collect();
    assert_ne!(twins[0], twins[1], "one twin overwrote the other");
    assert!(twins.iter().any(|t| t.ends_with(b"<!-- a -->")));
    assert!(twins.iter().any(|t| t.ends_with(b"<!-- b -->")));
}

#[tokio::test(flavor = "multi_thread")]
async fn other_content_keeps_its_name_with_a_matching_extension() {
    let png: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR fake png";
    let origin = Origin::start(move |req| match req.path.as_str() {
        "/img/logo" => Reply::new(200)
            .header("content-type", "image/png")
            .body(png),
        "/img/photo.png" => Reply::new(200)
            .header("content-type", "image/png")
            .body(png),
        "/api/data" => Reply::new(200)
            .header("content-type", "application/json")
            .body("{\"ok\":true}"),
        "/download" => Reply::new(200)
            .header("content-type", "application/pdf")
            .header(
                "content-disposition",
                "attachment; filename=\"resume.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf",
            )
            .body("%PDF-1.4 fake"),
        "/evil" => Reply::new(200)
            .header("content-type", "text/plain")
            .header(
                "content-disposition",
                "attachment; filename=\"../../.profile\"",
            )
            .body("no"),
        _ => Reply::new(404),
    })
    .await;
    let proxy = proxy(&[]);
    let dir = tempfile::tempdir().unwrap();
    let paths = [
        "/img/logo",
        "/img/photo.png",
        "/api/data",
        "/download",
        "/evil",
    ];
    let run = ferry_get_paths(&proxy, dir.path(), &origin, &paths).await;
    assert_eq!(run.code, Some(0), "{}", run.both());
    assert_eq!(
        files(dir.path()),
        [
            "data.json",
            "logo.png",
            "photo.png",
            "profile.txt",
            "résumé.pdf"
        ]
    );
    assert_eq!(read(dir.path(), "logo.png"), png);
    assert_eq!(read(dir.path(), "résumé.pdf"), b"%PDF-1.4 fake");
    assert_eq!(read(dir.path(), "data.json"), b"{\"ok\":true}");
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_have_clear_messages_and_exit_codes_and_the_rest_complete() {
    let origin = Origin::start(|req| match req.path.as_str() {
        "/ok" => Reply::html(page("Fine")),
        _ => Reply::new(404)
            .header("content-type", "text/html")
            .body(page("Nothing here")),
    })
    .await;
    let proxy = proxy(&["--deny-domain", "blocked.test"]);
    let dir = tempfile::tempdir().unwrap();

    // A 404 is reported and not saved; the good URL next to it is saved.
    let run = ferry_get(
        &proxy,
        dir.path(),
        &[&origin.url("/missing"), &origin.url("/ok")],
    )
    .await;
    assert_eq!(run.code, Some(1), "{}", run.both());
    assert!(
        run.stderr.contains("404 Not Found: Nothing here"),
        "{}",
        run.both()
    );
    assert!(run.stdout.contains("✗ 404 Not Found"), "{}", run.both());
    assert_eq!(files(dir.path()), ["Fine.html"]);

    // --save-errors keeps the page but still fails.
    let run = ferry_get(
        &proxy,
        dir.path(),
        &["--save-errors", &origin.url("/missing")],
    )
    .await;
    assert_eq!(run.code, Some(1), "{}", run.both());
    assert_eq!(files(dir.path()), ["Fine.html", "Nothing here.html"]);

    // A domain the proxy denies: its 403 page is read for the cause.
    let run = ferry_get(&proxy, dir.path(), &["http://blocked.test/"]).await;
    assert_eq!(run.code, Some(1), "{}", run.both());
    assert!(
        run.stderr.contains("blocked by the proxy (403 Forbidden)"),
        "{}",
        run.both()
    );
    assert!(run.stderr.contains("blocked.test"), "{}", run.both());

    // Bad URLs fail alone.
    let run = ferry_get(
        &proxy,
        dir.path(),
        &[
            "ftp://example.test/file",
            "http://exa mple.test/",
            &origin.url("/ok"),
        ],
    )
    .await;
    assert_eq!(run.code, Some(1), "{}", run.both());
    assert!(
        run.stderr
            .contains("bad URL \"ftp://example.test/file\": scheme ftp:// is not supported"),
        "{}",
        run.both()
    );
    assert!(
        run.stderr.contains("bad URL \"http://exa mple.test/\""),
        "{}",
        run.both()
    );
    assert!(files(dir.path()).contains(&"Fine (2).html".to_string()));

    // No proxy listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let run = ferry_get_via(
        &format!("http://127.0.0.1:{port}"),
        dir.path(),
        &[&origin.url("/ok")],
    )
    .await;
    assert_eq!(run.code, Some(1), "{}", run.both());
    assert!(
        run.stderr.contains(&format!(
            "cannot reach the proxy at 127.0.0.1:{port} (--proxy): connection refused"
        )),
        "{}",
        run.both()
    );

    // Usage errors exit 2.
    let run = ferry_get_env(&["-o", "x.html", "http://a.test/", "http://b.test/"], &[]).await;
    assert_eq!(run.code, Some(2), "{}", run.both());
    let run = ferry_get_env(&["--proxy", "socks5://127.0.0.1:1", "http://a.test/"], &[]).await;
    assert_eq!(run.code, Some(2), "{}", run.both());
    assert!(run.stderr.contains("not supported"), "{}", run.both());
}

#[tokio::test(flavor = "multi_thread")]
async fn several_urls_are_in_flight_at_once() {
    let gate = Gate::new();
    let held = gate.clone();
    let origin = Origin::start(move |req| Reply::html(page(&req.path[1..])).gate(&held)).await;
    let proxy = proxy(&["--no-cache"]);
    let dir = tempfile::tempdir().unwrap();
    let urls: Vec<String> = ["/one", "/two", "/three"]
        .iter()
        .map(|p| origin.url(p))
        .collect();
    let mut args = vec!["--jobs", "2"];
    args.extend(urls.iter().map(String::as_str));
    let mut child = get_command_via(&proxy.url(), dir.path(), &args)
        .spawn()
        .unwrap();

    // Two requests held at the origin at the same time; the third waits for a job slot.
    assert!(
        wait_until(LIMIT, || origin.in_flight() == 2).await,
        "expected 2 requests in flight, origin saw {}",
        origin.requests().len()
    );
    assert_eq!(
        origin.requests().len(),
        2,
        "--jobs 2 must hold the third URL back"
    );
    gate.open();
    let status = tokio::time::timeout(LIMIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    assert!(origin.max_in_flight() >= 2);
    assert_eq!(files(dir.path()), ["one.html", "three.html", "two.html"]);
}

async fn tls_origin(ca: &TestCa) -> Origin {
    Origin::start_tls(ca, |_| {
        Reply::html(page("Secure page")).header("cache-control", "max-age=300")
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn https_goes_to_the_proxy_in_absolute_form() {
    let ca = TestCa::new();
    let origin = tls_origin(&ca).await;
    let ca_path = ca.pem_path().display().to_string();
    let proxy = proxy(&["--upstream-ca", &ca_path]);
    let dir = tempfile::tempdir().unwrap();
    let url = origin.url("/secure");
    assert!(url.starts_with("https://"));

    let run = ferry_get(&proxy, dir.path(), &[&url]).await;
    assert_eq!(run.code, Some(0), "{}", run.both());
    assert_eq!(files(dir.path()), ["Secure page.html"]);
    // The proxy fetched it itself over TLS: no CONNECT tunnel.
    assert_eq!(origin.count("/secure"), 1);
    let log = proxy.wait_stdout_lines(1, LIMIT).join("\n");
    assert!(
        log.contains(&format!("\"GET {url} HTTP/1.1\"")),
        "access log:\n{log}"
    );
    assert!(!log.contains("CONNECT"), "access log:\n{log}");
    assert!(run.stdout.contains("cache: ferry; fwd="), "{}", run.both());
}

/// Blocked by a proxy bug at the time of writing: for an `https://` GET in
/// absolute form the proxy answers `Cache-Status: ferry; fwd=uri-miss; stored`
/// but nothing is in the cache afterwards (`ferry cache ls` is empty) and the
/// next identical request misses again. The same test over plain http hits
/// (see `the_proxy_cache_status_is_reported`).
#[tokio::test(flavor = "multi_thread")]
async fn https_pages_are_served_from_the_proxy_cache() {
    let ca = TestCa::new();
    let origin = tls_origin(&ca).await;
    let ca_path = ca.pem_path().display().to_string();
    let proxy = proxy(&["--upstream-ca", &ca_path]);
    let dir = tempfile::tempdir().unwrap();
    let url = origin.url("/secure");
    let first = ferry_get(&proxy, dir.path(), &[&url]).await;
    assert_eq!(first.code, Some(0), "{}", first.both());
    let second = ferry_get(&proxy, dir.path(), &[&url]).await;
    assert_eq!(second.code, Some(0), "{}", second.both());
    assert_eq!(
        origin.count("/secure"),
        1,
        "{}\n{}",
        first.both(),
        second.both()
    );
    assert!(
        second.stdout.contains("cache: ferry; hit"),
        "{}",
        second.both()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_proxy_cache_status_is_reported() {
    let origin =
        Origin::start(|_| Reply::html(page("Cached page")).header("cache-control", "max-age=300"))
            .await;
    let proxy = proxy(&[]);
    let dir = tempfile::tempdir().unwrap();
    let url = origin.url("/cached");
    let first = ferry_get(&proxy, dir.path(), &[&url]).await;
    assert_eq!(first.code, Some(0), "{}", first.both());
    let second = ferry_get(&proxy, dir.path(), &[&url]).await;
    assert_eq!(second.code, Some(0), "{}", second.both());
    assert_eq!(origin.count("/cached"), 1);
    assert!(
        first.stdout.contains("cache: ferry; fwd=uri-miss; stored"),
        "{}",
        first.both()
    );
    assert!(
        second.stdout.contains("cache: ferry; hit"),
        "{}",
        second.both()
    );
    // Without a proxy cache status the report says "-".
    let uncached = proxy_no_cache_status().await;
    assert!(uncached.contains("cache: -"), "{uncached}");
}

/// A minimal stand-in proxy that answers every request itself without cache
/// headers, to show the report's "-" (Ferry's proxy always sends them).
async fn proxy_no_cache_status() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let mut got = Vec::new();
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = sock.read(&mut buf).await.unwrap();
            if n == 0 {
                return;
            }
            got.extend_from_slice(&buf[..n]);
        }
        let body = "<title>Plain</title>";
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        sock.write_all(head.as_bytes()).await.unwrap();
        sock.write_all(body.as_bytes()).await.unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    let run = ferry_get_via(
        &format!("http://{addr}"),
        dir.path(),
        &["http://plain.test/"],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.both());
    run.stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn the_proxy_comes_from_the_environment_as_curl_reads_it() {
    let origin = Origin::start(|_| Reply::html(page("From env"))).await;
    let proxy = proxy(&["--no-cache"]);
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().display().to_string();
    let url = origin.url("/env");

    // http_proxy (lower case) is used for http URLs.
    let run = ferry_get_env(
        &["--output-dir", &dir_arg, &url],
        &[("http_proxy", &proxy.url())],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.both());

    // Upper-case HTTP_PROXY is ignored (as curl does), so the default proxy
    // is tried; pointing the default away shows it: nothing else was used.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let dead = format!("http://127.0.0.1:{port}");
    let run = ferry_get_env(
        &["--output-dir", &dir_arg, &url],
        &[("HTTP_PROXY", &proxy.url()), ("all_proxy", &dead)],
    )
    .await;
    assert_eq!(run.code, Some(1), "{}", run.both());
    assert!(run.stderr.contains("(all_proxy)"), "{}", run.both());

    // ALL_PROXY as the fallback.
    let run = ferry_get_env(
        &["--output-dir", &dir_arg, &url],
        &[("ALL_PROXY", &proxy.url())],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.both());

    // --proxy beats the environment.
    let run = ferry_get_env(
        &["--proxy", &proxy.url(), "--output-dir", &dir_arg, &url],
        &[("http_proxy", &dead)],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.both());
    assert_eq!(origin.count("/env"), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_in_the_proxy_url_authenticate() {
    let origin = Origin::start(|_| Reply::html(page("Members"))).await;
    let user = format!("alice:{}", hash_password("s3cret pass"));
    let proxy = proxy(&["--no-cache", "--auth-user", &user]);
    let dir = tempfile::tempdir().unwrap();
    let url = origin.url("/members");
    let addr = proxy.addr();

    let run = ferry_get(&proxy, dir.path(), &[&url]).await;
    assert_eq!(run.code, Some(1), "{}", run.both());
    assert!(
        run.stderr.contains("requires a user name and password"),
        "{}",
        run.both()
    );

    let with_creds = format!("http://alice:s3cret%20pass@{addr}");
    let run = ferry_get_via(&with_creds, dir.path(), &[&url]).await;
    assert_eq!(run.code, Some(0), "{}", run.both());
    assert_eq!(files(dir.path()), ["Members.html"]);
    assert!(origin.requests()[0].header("proxy-authorization").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn json_output_and_a_chosen_file_name() {
    let origin = Origin::start(|req| match req.path.as_str() {
        "/moved" => Reply::new(301).header("location", "/final"),
        "/final" => Reply::html(page("Landed")),
        _ => Reply::new(404),
    })
    .await;
    let proxy = proxy(&[]);
    let dir = tempfile::tempdir().unwrap();

    let run = ferry_get(
        &proxy,
        dir.path(),
        &["--json", &origin.url("/moved"), &origin.url("/gone")],
    )
    .await;
    assert_eq!(run.code, Some(1), "{}", run.both());
    let objects: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objects.len(), 2, "{}", run.both());
    let ok = objects.iter().find(|o| o["ok"] == true).unwrap();
    assert_eq!(ok["url"], origin.url("/moved"));
    assert_eq!(ok["final_url"], origin.url("/final"));
    assert_eq!(ok["status"], 200);
    assert_eq!(ok["title"], "Landed");
    assert!(ok["file"].as_str().unwrap().ends_with("Landed.html"));
    let failed = objects.iter().find(|o| o["ok"] == false).unwrap();
    assert_eq!(failed["status"], 404);
    assert_eq!(failed["error_kind"], "status");
    assert!(failed["file"].is_null());

    let run = ferry_get(
        &proxy,
        dir.path(),
        &["-o", "chosen.html", &origin.url("/final")],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.both());
    let run = ferry_get(
        &proxy,
        dir.path(),
        &["-o", "chosen.html", &origin.url("/final")],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.both());
    assert_eq!(
        files(dir.path()),
        ["Landed.html", "chosen (2).html", "chosen.html"]
    );
}

/// Every name in `dir`, temporary files included.
fn all_entries(dir: &Path) -> Vec<String> {
    dir_names(dir)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_download_leaves_no_file() {
    let origin = Origin::start(|_| {
        Reply::new(200)
            .header("content-type", "application/octet-stream")
            // Streamed slowly so the head and some body reach the client first.
            .truncated(4_000_000, 1_000_000)
            .chunk_delay(Duration::from_millis(5))
    })
    .await;
    let proxy = proxy(&["--no-cache"]);
    let dir = tempfile::tempdir().unwrap();
    let run = ferry_get(&proxy, dir.path(), &[&origin.url("/big.bin")]).await;
    assert_eq!(run.code, Some(1), "{}", run.both());
    assert!(
        run.stderr.contains("download interrupted after"),
        "{}",
        run.both()
    );
    assert_eq!(all_entries(dir.path()), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_stops_downloads_and_removes_their_temporary_files() {
    // A long, slow body: still streaming when the signal comes.
    let origin = Origin::start(|_| {
        Reply::new(200)
            .header("content-type", "application/octet-stream")
            .pattern(64 * 1024 * 1024)
            .chunk_delay(Duration::from_millis(50))
    })
    .await;
    let proxy = proxy(&["--no-cache"]);
    let dir = tempfile::tempdir().unwrap();
    let child = get_command_via(&proxy.url(), dir.path(), &[&origin.url("/slow.bin")])
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    // The body has started once its temporary file exists.
    assert!(
        wait_until(LIMIT, || all_entries(dir.path())
            .iter()
            .any(|n| n.ends_with(".part")))
        .await
    );
    let kill = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = tokio::time::timeout(LIMIT, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(all_entries(dir.path()), Vec::<String>::new());
}
