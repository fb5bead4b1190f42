//! The cache directory belongs to the proxy: other local users cannot read
//! what it stores, and a damaged object is never served, not even as a
//! range of bytes that happen to lie outside the damage.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;
use http::Method;

fn walk(dir: &Path, out: &mut Vec<(std::path::PathBuf, u32, bool)>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let meta = entry.metadata().unwrap();
        let mode = meta.permissions().mode() & 0o777;
        out.push((entry.path(), mode, meta.is_dir()));
        if meta.is_dir() {
            walk(&entry.path(), out);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stored_responses_are_private_to_the_proxys_user() {
    let origin =
        Origin::start(|_| Reply::text("someone's page").header("cache-control", "max-age=60"))
            .await;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("cache");
    let proxy = proxy(&["--cache-dir", dir.to_str().unwrap()]);
    let client = ProxyClient::new(proxy.addr());
    client.get(&origin.url("/a")).await;
    assert!(cached(&client.get(&origin.url("/a")).await));
    // A purge from `ferry cache` writes the journal.
    let (ok, _, err) = cache_cmd(&dir, &["purge", &origin.url("/nothing")]);
    assert!(!ok, "{err}");
    let mut entries = vec![(
        dir.clone(),
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        true,
    )];
    walk(&dir, &mut entries);
    assert!(entries.iter().any(|(_, _, is_dir)| !is_dir), "{entries:?}");
    for (path, mode, is_dir) in entries {
        let want = if is_dir { 0o700 } else { 0o600 };
        assert_eq!(mode, want, "{} is {mode:o}", path.display());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_range_of_a_damaged_object_is_never_served() {
    let origin = Origin::start(|_| {
        Reply::new(200)
            .header("cache-control", "max-age=600")
            .pattern(900_000)
    })
    .await;
    // A small memory tier keeps the body on disk only.
    let proxy = proxy(&["--memory-cache-size", "64KiB"]);
    let client = ProxyClient::new(proxy.addr());
    let url = origin.url("/big.bin");
    assert_eq!(client.get(&url).await.body.len(), 900_000);
    // Damage one byte near the end of the stored body.
    let mut files = Vec::new();
    walk(&proxy.cache_dir().unwrap().join("objects"), &mut files);
    let (path, _, _) = files.iter().find(|(_, _, d)| !d).unwrap();
    let mut bytes = std::fs::read(path).unwrap();
    let at = bytes.len() - 200;
    bytes[at] ^= 0xff;
    std::fs::write(path, &bytes).unwrap();
    let range = client
        .try_send(Method::GET, &url, &[("range", "bytes=0-99")], "")
        .await;
    match range {
        Err(_) => {}
        Ok(resp) => panic!(
            "a range of a damaged object was served: {} with {} bytes",
            resp.status,
            resp.body.len()
        ),
    }
    let again = client.get(&url).await;
    assert_eq!(
        again.header("x-cache"),
        Some("MISS"),
        "the damaged copy is gone"
    );
    assert_eq!(again.body.len(), 900_000);
}
