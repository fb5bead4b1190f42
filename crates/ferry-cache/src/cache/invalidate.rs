//! Forgetting stored responses: invalidation after an unsafe request
//! (RFC 9111 §4.4) and explicit purges. Separate because it only removes,
//! never reads or writes objects.

use http::header;
use http::{request, response};

use super::handle::Cache;
use super::lookup::Hit;
use crate::key::{CacheKey, resolve_same_origin};

impl Cache {
    /// After a non-error response to an unsafe method, forgets what is stored
    /// for the target URI (whose key is `target`) and for same-origin
    /// `Location` / `Content-Location` (RFC 9111 §4.4).
    pub async fn invalidate(
        &self,
        target: &CacheKey,
        request: &request::Parts,
        response: &response::Parts,
    ) {
        if request.method.is_safe() || !(200..400).contains(&response.status.as_u16()) {
            return;
        }
        let mut ids = vec![target.id()];
        for name in [header::LOCATION, header::CONTENT_LOCATION] {
            let Some(value) = response.headers.get(&name).and_then(|v| v.to_str().ok()) else {
                continue;
            };
            if let Some(uri) = resolve_same_origin(&request.uri, value) {
                if let Some(k) = CacheKey::from_uri(&uri) {
                    ids.push(k.id());
                }
            }
        }
        let inner = self.inner.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for id in ids {
                inner.remove(id);
            }
        })
        .await;
    }

    /// Removes the stored response `hit` came from (e.g. once a new response
    /// to the same request forbids storing it).
    pub async fn evict(&self, hit: &Hit) {
        let inner = self.inner.clone();
        let id = hit.entry.id;
        let _ = tokio::task::spawn_blocking(move || inner.remove(id)).await;
    }

    /// Removes what is stored under `key` (the proxy's `PURGE`, and the
    /// dashboard's purge of a URL): the response, or the `Vary` marker and
    /// every variant stored for the URL; `true` if there was something. One
    /// stored response alone (a browser row) is [`Cache::purge_object`].
    pub async fn purge(&self, key: &CacheKey) -> bool {
        let inner = self.inner.clone();
        let key = key.clone();
        tokio::task::spawn_blocking(move || {
            // Variants are found through the index in memory (they are named
            // by a digest of the request headers they were stored for): one
            // pass over it, a few milliseconds per 100,000 objects.
            let variants = super::browse::objects_at(&inner, key.as_str());
            let mut removed = inner.remove(key.id());
            for id in variants {
                removed |= inner.remove(id);
            }
            removed
        })
        .await
        .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http::Method;

    use http::Uri;

    use super::*;
    use crate::cache::test_support::{body_of, config, get, key_of, ok, store};
    use crate::cache::{Lookup, MissKind};

    #[tokio::test]
    async fn variants_and_invalidation() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(config(dir.path())).unwrap();
        let en = get("http://a.test/v", &[("accept-language", "en")]);
        let fr = get("http://a.test/v", &[("accept-language", "fr")]);
        let vary = ok(&[("cache-control", "max-age=60"), ("vary", "Accept-Language")]);
        store(&cache, &en, &vary, b"hello").await;
        assert!(matches!(
            cache.lookup(&fr, &key_of(&fr)).await,
            Lookup::Miss(MissKind::VaryMiss)
        ));
        store(&cache, &fr, &vary, b"bonjour").await;
        let Lookup::Fresh(hit) = cache.lookup(&en, &key_of(&en)).await else {
            panic!()
        };
        assert_eq!(body_of(hit, &en).await.1, Bytes::from_static(b"hello"));
        let Lookup::Fresh(hit) = cache.lookup(&fr, &key_of(&fr)).await else {
            panic!()
        };
        assert_eq!(body_of(hit, &fr).await.1, Bytes::from_static(b"bonjour"));

        let mut post = get("http://a.test/v", &[]);
        post.method = Method::POST;
        cache.invalidate(&key_of(&post), &post, &ok(&[])).await;
        assert!(matches!(
            cache.lookup(&en, &key_of(&en)).await,
            Lookup::Miss(_)
        ));
        // A new marker generation: the old variants are unreachable.
        store(&cache, &en, &vary, b"hello again").await;
        assert!(matches!(
            cache.lookup(&fr, &key_of(&fr)).await,
            Lookup::Miss(_)
        ));
    }

    #[test]
    fn same_origin_resolution() {
        let base: Uri = "http://a.test/x/y".parse().unwrap();
        assert_eq!(
            resolve_same_origin(&base, "/z").unwrap().to_string(),
            "http://a.test/z"
        );
        assert!(resolve_same_origin(&base, "http://a.test/q").is_some());
        assert!(resolve_same_origin(&base, "http://b.test/q").is_none());
        assert!(resolve_same_origin(&base, "https://a.test/q").is_none());
        assert!(resolve_same_origin(&base, "//b.test/q").is_none());
    }
}
