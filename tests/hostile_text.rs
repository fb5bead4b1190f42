//! Untrusted text stays inert: whatever a client or an origin sends, the
//! access log stays one parseable line per request with no credentials, the
//! client never prints control characters to a terminal, an origin cannot
//! forge the proxy's own headers, and no address header from an earlier hop
//! reaches a site.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(30);

/// C0 and C1 controls, DEL, line/paragraph separators, bidi overrides.
fn unsafe_chars(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| {
            (c.is_control() && c != '\n')
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .collect()
}

/// Requests whose target or headers carry what a hostile client can get
/// past the HTTP parser (one oddity each, so none is refused before it is
/// logged): backslashes, quotes, UTF-8 for C1 controls, the line separator
/// and a bidi override, tabs; and credentials in the target.
fn hostile_requests(origin: &Origin) -> Vec<Vec<u8>> {
    let host = origin.addr();
    let targets: [&[u8]; 5] = [
        b"/q\\c",
        "/\u{85}x".as_bytes(),
        "/\u{2028}".as_bytes(),
        "/\u{202e}x".as_bytes(),
        b"/%0d%0a%1b",
    ];
    let headers: [&[u8]; 5] = [
        b"User-Agent: \xc2\x9b",
        b"User-Agent: \"\\",
        b"User-Agent: \xe2\x80\xa8",
        b"User-Agent: a\tb",
        b"Referer: \xe2\x80\xa9",
    ];
    let mut out = Vec::new();
    for target in targets {
        let mut req = format!("GET http://{host}").into_bytes();
        req.extend_from_slice(target);
        req.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        out.push(req);
    }
    for header in headers {
        let mut req = format!("GET http://{host}/h HTTP/1.1\r\nHost: x\r\n").into_bytes();
        req.extend_from_slice(header);
        req.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
        out.push(req);
    }
    out.push(
        format!("GET http://alice:s3cret@{host}/private HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .into_bytes(),
    );
    out
}

async fn log_lines(format: &str) -> Vec<String> {
    let origin = Origin::start(|_| Reply::text("ok")).await;
    let proxy = proxy(&["--log-format", format, "--no-cache"]);
    let requests = hostile_requests(&origin);
    for req in &requests {
        raw_exchange(proxy.addr(), req, LIMIT).await;
    }
    proxy.wait_stdout_lines(requests.len(), LIMIT)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_common_log_stays_one_inert_line_per_request_without_credentials() {
    let lines = log_lines("common").await;
    assert_eq!(lines.len(), 11, "{lines:#?}");
    for line in &lines {
        assert!(unsafe_chars(line).is_empty(), "{line:?}");
        assert!(!line.contains("s3cret"), "credentials logged: {line}");
        // client - user [time] "request line" status bytes ms cache
        let (_, rest) = line.split_once("] \"").expect(line);
        let mut escaped = false;
        let mut end = None;
        for (i, c) in rest.char_indices() {
            match (escaped, c) {
                (false, '\\') => escaped = true,
                (false, '"') => {
                    end = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let tail: Vec<&str> = rest[end.expect(line) + 1..].split_whitespace().collect();
        assert_eq!(tail.len(), 4, "{line}");
        assert!(tail[0].parse::<u16>().is_ok(), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_json_log_stays_one_inert_object_per_request_without_credentials() {
    let lines = log_lines("json").await;
    assert_eq!(lines.len(), 11, "{lines:#?}");
    for line in &lines {
        assert!(unsafe_chars(line).is_empty(), "{line:?}");
        assert!(!line.contains("s3cret"), "credentials logged: {line}");
        let v: serde_json::Value = serde_json::from_str(line).expect(line);
        assert!(v["status"].as_u64().is_some(), "{line}");
    }
    let agents: Vec<String> = lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter_map(|v| v["user_agent"].as_str().map(str::to_string))
        .collect();
    assert!(
        agents.iter().any(|a| a.contains('\u{9b}')),
        "the user agent is logged (escaped in the line, intact once parsed): {agents:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_origin_cannot_forge_the_proxys_own_headers() {
    let origin = Origin::start(|_| {
        Reply::text("page")
            .header("cache-control", "max-age=60")
            .header("x-ferry-error", "you are blocked, call 555-0100")
            .header("x-cache", "HIT")
    })
    .await;
    for args in [&[][..], &["--no-cache"][..]] {
        let proxy = proxy(args);
        let client = ProxyClient::new(proxy.addr());
        let resp = client.get(&origin.url("/forged")).await;
        assert_eq!(resp.header("x-ferry-error"), None, "{args:?}");
        let x_cache = resp.header("x-cache");
        if args.is_empty() {
            assert_eq!(x_cache, Some("MISS"), "the first answer is a miss");
        } else {
            assert_eq!(x_cache, None, "without a cache there is no X-Cache");
        }
        let again = client.get(&origin.url("/forged")).await;
        assert_eq!(again.header("x-ferry-error"), None, "not stored either");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_address_header_from_an_earlier_hop_reaches_the_site() {
    let origin = Origin::start(|_| Reply::text("ok")).await;
    let proxy = proxy(&["--no-cache"]);
    let client = ProxyClient::new(proxy.addr());
    let spoofed = [
        ("x-forwarded-for", "203.0.113.7"),
        ("forwarded", "for=203.0.113.7"),
        ("x-real-ip", "203.0.113.7"),
        ("true-client-ip", "203.0.113.7"),
        ("client-ip", "203.0.113.7"),
        ("cf-connecting-ip", "203.0.113.7"),
        ("fastly-client-ip", "203.0.113.7"),
        ("x-client-ip", "203.0.113.7"),
        ("x-cluster-client-ip", "203.0.113.7"),
        ("x-originating-ip", "203.0.113.7"),
    ];
    client.get_with(&origin.url("/who"), &spoofed).await;
    let seen = &origin.requests()[0];
    for (name, _) in spoofed {
        assert_eq!(seen.header(name), None, "{name} reached the site");
    }
    assert!(
        !format!("{:?}", seen.headers).contains("203.0.113.7"),
        "{:?}",
        seen.headers
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ferry_get_never_prints_an_origins_control_characters() {
    let evil = "Evil&#27;]0;pwned&#7;&#27;[2J&#x9b;31m&#x2028;&#x202e;title";
    let origin = Origin::start(move |req| {
        let html = format!("<html><head><title>{evil}</title></head><body>x</body></html>");
        if req.path == "/fail" {
            Reply::new(500)
                .header("content-type", "text/html; charset=utf-8")
                .body(html)
        } else {
            Reply::html(html)
        }
    })
    .await;
    let proxy = proxy(&["--no-cache"]);
    let dir = tempfile::tempdir().unwrap();
    for extra in [&[][..], &["--json"][..]] {
        let mut args = extra.to_vec();
        let (ok, fail) = (origin.url("/page"), origin.url("/fail"));
        args.extend([ok.as_str(), fail.as_str()]);
        let run = ferry_get(&proxy, dir.path(), &args).await;
        assert_eq!(run.code, Some(1), "{}", run.both());
        assert!(
            unsafe_chars(&run.stdout).is_empty() && unsafe_chars(&run.stderr).is_empty(),
            "control characters reached the terminal: {:?}",
            run.both()
        );
    }
}
