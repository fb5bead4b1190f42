//! Operator cache rules and the package presets, against an origin that
//! answers as the package registries do: `Content-Type`, `Content-Length`
//! and `Date` only, no freshness and no validators.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

/// A registry-like origin: every answer bare, the body naming the path
/// (and, for `/v2/.../blobs/`, a redirect to a signed storage URL).
async fn registry() -> Origin {
    let signatures = std::sync::atomic::AtomicUsize::new(0);
    Origin::start(move |req| {
        if req.path.contains("/blobs/sha256:") {
            let digest = req.path.rsplit(':').next().unwrap_or("");
            let signature = signatures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Reply::new(307).header(
                "location",
                &format!(
                    "/storage/blobs/sha256/{}/{digest}/data?X-Amz-Signature={signature}",
                    &digest[..2]
                ),
            );
        }
        if req.path.contains("private") {
            return Reply::new(200)
                .header("cache-control", "private")
                .body(format!("private {}", req.path));
        }
        if req.path.contains("cookie") {
            return Reply::new(200)
                .header("set-cookie", "session=secret")
                .body(format!("cookie {}", req.path));
        }
        if req.path.contains("nostore") {
            return Reply::new(200)
                .header("cache-control", "no-store")
                .body(format!("nostore {}", req.path));
        }
        Reply::new(200)
            .header("content-type", "application/octet-stream")
            .body(format!("file {}", req.path))
    })
    .await
}

async fn twice(client: &ProxyClient, url: &str, headers: &[(&str, &str)]) -> TestResponse {
    let first = client.get_with(url, headers).await;
    assert_eq!(first.status, 200, "{url}: {}", first.text());
    client.get_with(url, headers).await
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_rule_a_bare_response_is_fetched_every_time_and_with_one_it_is_a_hit() {
    let origin = registry().await;
    let bare = proxy(&[]);
    let client = ProxyClient::new(bare.addr());
    let url = origin.url("/files/tool-1.0.tar.gz");
    let second = twice(&client, &url, &[]).await;
    assert_eq!(second.header("x-cache"), Some("MISS"));
    assert!(
        second
            .header("cache-status")
            .unwrap()
            .contains("not-reusable")
    );
    assert_eq!(origin.count("/files/tool-1.0.tar.gz"), 2);

    let ruled = proxy(&["--cache-rule", "name=files,path=/files/**,fresh=1h"]);
    let client = ProxyClient::new(ruled.addr());
    let url = origin.url("/files/tool-2.0.tar.gz");
    let first = client.get(&url).await;
    assert!(
        first
            .header("cache-status")
            .unwrap()
            .contains("stored; detail=rule:files"),
        "{:?}",
        first.header("cache-status")
    );
    let second = client.get(&url).await;
    assert_eq!(second.header("x-cache"), Some("HIT"));
    let status = second.header("cache-status").unwrap();
    assert!(
        status.contains("hit") && status.contains("detail=rule:files"),
        "{status}"
    );
    assert_eq!(second.text(), "file /files/tool-2.0.tar.gz");
    assert_eq!(origin.count("/files/tool-2.0.tar.gz"), 1);
    // A rule for other paths changes nothing here.
    let other = origin.url("/elsewhere/page");
    assert_eq!(
        twice(&client, &other, &[]).await.header("x-cache"),
        Some("MISS")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_rule_makes_a_private_or_personal_response_shared() {
    let origin = registry().await;
    let proxy = proxy(&["--cache-rule", "name=all,path=/**,immutable"]);
    let client = ProxyClient::new(proxy.addr());
    for path in ["/a/private.bin", "/a/nostore.bin", "/a/cookie.bin"] {
        let second = twice(&client, &origin.url(path), &[]).await;
        assert_eq!(second.header("x-cache"), Some("MISS"), "{path}");
        assert_eq!(origin.count(path), 2, "{path}");
    }
    // A request with credentials: stored only if the origin says it may be.
    let url = origin.url("/a/with-auth.bin");
    let second = twice(&client, &url, &[("authorization", "Basic dXNlcjpwYXNz")]).await;
    assert_eq!(second.header("x-cache"), Some("MISS"));
    assert_eq!(origin.count("/a/with-auth.bin"), 2);
    // Nothing of the personal answers was kept for anyone else.
    let other = client.get(&origin.url("/a/cookie.bin")).await;
    assert_eq!(other.header("x-cache"), Some("MISS"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_package_presets_know_artifacts_and_indexes_by_their_paths_on_any_host() {
    let origin = registry().await;
    let proxy = proxy(&["--cache-preset", "packages"]);
    let client = ProxyClient::new(proxy.addr());
    // What npm 11, pip 23 and cargo send for index documents.
    let npm: &[(&str, &str)] = &[
        ("accept", "application/json"),
        (
            "user-agent",
            "npm/11.19.1 node/v20.20.2 linux x64 workspaces/false",
        ),
    ];
    let pip: &[(&str, &str)] = &[
        (
            "accept",
            "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01",
        ),
        ("cache-control", "max-age=0"),
    ];
    let cargo: &[(&str, &str)] = &[("user-agent", "cargo/1.95.0 (f2d3ce0bd 2026-03-21)")];
    // (path, request headers, the rule that decides)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (
            "/debian/pool/main/h/hello/hello_2.10-3_amd64.deb",
            &[],
            "debian-pool",
        ),
        (
            "/debian/dists/bookworm/main/binary-amd64/by-hash/SHA256/0a1b2c",
            &[],
            "debian-by-hash",
        ),
        ("/debian/dists/bookworm/InRelease", &[], "debian-index"),
        (
            "/packages/3a/1f/0123abcd/six-1.16.0-py2.py3-none-any.whl",
            &[],
            "pypi-files",
        ),
        ("/left-pad/-/left-pad-1.3.0.tgz", &[], "npm-tarballs"),
        ("/left-pad", npm, "npm-documents"),
        ("/simple/six/", pip, "pypi-index"),
        ("/crates/serde/serde-1.0.0.crate", &[], "crates-files"),
        (
            "/artifactory/api/cargo/crates-io/v1/crates/ryu/1.0.23/download",
            &[],
            "crates-files",
        ),
        ("/3/r/ryu", cargo, "crates-index"),
        ("/golang.org/x/text/@v/v0.3.0.zip", &[], "go-modules"),
    ];
    for (path, headers, rule) in cases {
        let second = twice(&client, &origin.url(path), headers).await;
        assert_eq!(second.header("x-cache"), Some("HIT"), "{path}");
        let status = second.header("cache-status").unwrap();
        assert!(
            status.contains(&format!("detail=rule:{rule}")),
            "{path}: {status}"
        );
        assert_eq!(origin.count(path), 1, "{path}");
    }
    // Immutable files, and index files while their brief freshness lasts,
    // are answered even when the client asks to reload them (pip does on
    // every index page).
    for path in [
        "/debian/pool/main/h/hello/hello_2.10-3_amd64.deb",
        "/debian/dists/bookworm/InRelease",
    ] {
        let reload = client
            .get_with(&origin.url(path), &[("cache-control", "no-cache")])
            .await;
        assert_eq!(reload.header("x-cache"), Some("HIT"), "{path}");
    }
    // An operator's rule honours a reload unless it says otherwise.
    let plain = common::proxy(&["--cache-rule", "name=files,path=/files/**,fresh=1h"]);
    let plain_client = ProxyClient::new(plain.addr());
    let url = origin.url("/files/reloaded.bin");
    twice(&plain_client, &url, &[]).await;
    let reload = plain_client
        .get_with(&url, &[("cache-control", "no-cache")])
        .await;
    assert_eq!(reload.header("x-cache"), Some("MISS"));
    // Ordinary pages are left as the origin says.
    for path in ["/about", "/en/us/index.html", "/downloads/app.jar"] {
        let second = twice(&client, &origin.url(path), &[]).await;
        assert_eq!(second.header("x-cache"), Some("MISS"), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_download_url_is_one_object_whatever_its_signature() {
    let origin = registry().await;
    let proxy = proxy(&[
        "--cache-preset",
        "oci",
        "--cache-rule",
        "name=signed,path=/releases/**,immutable,drop_query=sig|expires",
    ]);
    let client = ProxyClient::new(proxy.addr());
    let first = client
        .get(&origin.url("/releases/tool.tar.gz?sig=aaa&expires=1&arch=x86_64"))
        .await;
    assert_eq!(first.status, 200);
    let second = client
        .get(&origin.url("/releases/tool.tar.gz?sig=bbb&expires=2&arch=x86_64"))
        .await;
    assert_eq!(second.header("x-cache"), Some("HIT"));
    let other_arch = client
        .get(&origin.url("/releases/tool.tar.gz?sig=ccc&expires=3&arch=arm64"))
        .await;
    assert_eq!(
        other_arch.header("x-cache"),
        Some("MISS"),
        "kept parameters still count"
    );

    // A registry that redirects a blob to a signed storage URL: the blob is
    // stored once, under its digest.
    let blob = origin.url("/v2/library/alpine/blobs/sha256:ab12cd34");
    let mut locations = Vec::new();
    for round in 0..2 {
        let redirect = client.get(&blob).await;
        assert_eq!(redirect.status, 307);
        let location = redirect.header("location").unwrap().to_string();
        locations.push(location.clone());
        let data = client.get(&origin.url(&location)).await;
        assert_eq!(data.status, 200, "{}", data.text());
        if round == 1 {
            assert_eq!(data.header("x-cache"), Some("HIT"));
        }
    }
    assert_ne!(locations[0], locations[1], "a new signature each time");
    assert_eq!(
        origin
            .requests()
            .iter()
            .filter(|r| r.path.starts_with("/storage/"))
            .count(),
        1
    );
}

#[test]
fn bad_rules_and_presets_are_refused_at_start() {
    for args in [
        &["--cache-rule", "name=x"][..],
        &["--cache-rule", "name=x,path=/a,fresh=soon"][..],
        &["--cache-rule", "path=/a,fresh=1h"][..],
        &["--cache-preset", "debain"][..],
        &[
            "--cache-preset",
            "packages",
            "--preset-index-fresh",
            "often",
        ][..],
    ] {
        let out = std::process::Command::new(ferry())
            .args(["proxy", "--listen", "127.0.0.1:0", "--no-cache"])
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("cache") || stderr.contains("rule"),
            "{args:?}: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rule_from_the_config_file_is_named_in_the_cache_browser_and_the_json_log() {
    let origin = registry().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let config = dir.path().join("ferry.toml");
    std::fs::write(
        &config,
        format!(
            r#"access_log = {log:?}
log_format = "json"

[[cache_rules]]
name = "tarballs"
host = "127.0.0.1"
path = "/dist/**"
fresh = "2h"
"#,
            log = log.to_str().unwrap()
        ),
    )
    .unwrap();
    let proxy = proxy(&["--config", config.to_str().unwrap()]);
    let client = ProxyClient::new(proxy.addr());
    let url = origin.url("/dist/tool-3.0.tar.gz");
    let second = twice(&client, &url, &[]).await;
    assert_eq!(second.header("x-cache"), Some("HIT"));
    assert!(
        second
            .header("cache-status")
            .unwrap()
            .contains("detail=rule:tarballs")
    );
    assert_eq!(origin.count("/dist/tool-3.0.tar.gz"), 1);

    // The cache browser's object page names the rule and its freshness.
    let search = client
        .get(&format!("{}/cache?q=tool-3.0", proxy.url()))
        .await
        .text();
    let at = search
        .find("/cache/object?id=")
        .expect("a link to the object");
    let link = &search[at..];
    let link = &link[..link.find('"').unwrap()];
    let object = client.get(&format!("{}{link}", proxy.url())).await.text();
    let row = &object[object.find("Cache rule").expect("a Cache rule row")..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("tarballs"), "{row}");
    assert!(object.contains("7200 s"), "{object}");

    // Each JSON log line of the two requests names the rule.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|l| l["url"] == url.as_str())
            .collect();
        if lines.len() >= 2 {
            for line in &lines {
                assert_eq!(line["rule"], "tarballs", "{line}");
            }
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "two log lines expected in {text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
