//! `ferry cache ls / stats / purge / clear` on the directory of a running
//! proxy, and the PURGE method.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;

async fn is_hit(client: &ProxyClient, url: &str) -> bool {
    cached(&client.get(url).await)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cache_commands_work_while_the_proxy_runs() {
    let origin = Origin::start(|req| {
        Reply::text(format!("body of {}", req.path)).header("cache-control", "max-age=600")
    })
    .await;
    let proxy = proxy(&[]);
    let dir = proxy.cache_dir().unwrap().to_path_buf();
    let client = ProxyClient::new(proxy.addr());
    for p in ["/a", "/b", "/c"] {
        client.get(&origin.url(p)).await;
        assert!(is_hit(&client, &origin.url(p)).await);
    }

    let (ok, out, _) = cache_cmd(&dir, &["ls"]);
    assert!(ok);
    for p in ["/a", "/b", "/c"] {
        assert!(out.contains(&origin.url(p)), "{out}");
    }
    let (ok, out, _) = cache_cmd(&dir, &["ls", "--json"]);
    assert!(ok);
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["size"], 10);
    assert!(rows[0]["fresh_secs"].as_i64().unwrap() > 500);

    let (ok, out, _) = cache_cmd(&dir, &["stats", "--json"]);
    assert!(ok);
    let stats: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(stats["objects"], 3);

    // Purge one URL: the running proxy stops serving it.
    let (ok, out, _) = cache_cmd(&dir, &["purge", &origin.url("/a")]);
    assert!(ok, "{out}");
    let mut purged = false;
    for _ in 0..50 {
        if !is_hit(&client, &origin.url("/a")).await {
            purged = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(purged, "the proxy kept serving a purged object");
    assert!(is_hit(&client, &origin.url("/b")).await);
    let (ok, _, err) = cache_cmd(&dir, &["purge", "http://never.test/"]);
    assert!(!ok);
    assert!(err.contains("not in the cache"), "{err}");

    // Clear everything.
    let (ok, out, _) = cache_cmd(&dir, &["clear"]);
    assert!(ok, "{out}");
    let mut cleared = false;
    for _ in 0..50 {
        if !is_hit(&client, &origin.url("/b")).await && !is_hit(&client, &origin.url("/c")).await {
            cleared = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(cleared);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_purge_method_removes_a_stored_response() {
    let origin = Origin::start(|_| Reply::text("x").header("cache-control", "max-age=600")).await;
    let proxy = proxy(&[]);
    let client = ProxyClient::new(proxy.addr());
    let url = origin.url("/p");
    client.get(&url).await;
    assert!(is_hit(&client, &url).await);
    let purge = http::Method::from_bytes(b"PURGE").unwrap();
    let resp = client.send(purge.clone(), &url, &[], "").await;
    assert_eq!(resp.status, 200);
    assert!(!is_hit(&client, &url).await);
    let resp = client.send(purge, "http://never.test/", &[], "").await;
    assert_eq!(resp.status, 404);
    assert_eq!(
        origin
            .requests()
            .iter()
            .filter(|r| r.method == "PURGE")
            .count(),
        0
    );
}
