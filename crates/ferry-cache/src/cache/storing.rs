//! Storing and refreshing: deciding whether a response may be stored and
//! where (a new vary marker generation when needed), then handing it to the
//! writer; and rewriting a stored response's headers after a 304.

use std::sync::Arc;
use std::time::SystemTime;

use http::header;
use http::{Method, request, response};

use super::handle::Cache;
use super::lookup::Hit;
use crate::entry::Entry;
use crate::error::CacheError;
use crate::inner::Inner;
use crate::key::CacheKey;
use crate::meta::{Kind, Meta, to_ms};
use crate::policy::{self, FreshnessRule, NotStored};
use crate::store::disk::{self, ReadError};
use crate::store::index::{About, Usage, tick};
use crate::writer::{Plan, StoreWriter};

impl Cache {
    /// Starts storing `response` (to `request`, whose key is `key`) if the
    /// rules allow it; feed the body to the returned writer as it streams
    /// ([`Cache::begin_store_ruled`] without an operator's rule).
    pub async fn begin_store(
        &self,
        key: &CacheKey,
        request: &request::Parts,
        response: &response::Parts,
        request_time: SystemTime,
        response_time: SystemTime,
    ) -> Result<StoreWriter, NotStored> {
        let times = (request_time, response_time);
        self.begin_store_ruled(key, request, response, times, None)
            .await
    }

    /// Starts storing `response` as [`Cache::begin_store`] does, where an
    /// operator's `rule` that gives it freshness makes it worth storing.
    /// `times` are when the request was sent and the response arrived.
    pub async fn begin_store_ruled(
        &self,
        key: &CacheKey,
        request: &request::Parts,
        response: &response::Parts,
        times: (SystemTime, SystemTime),
        rule: Option<&FreshnessRule>,
    ) -> Result<StoreWriter, NotStored> {
        let (request_time, response_time) = times;
        let bounded = policy::with_bounded_age(response);
        let response = bounded.as_ref();
        if let Some(reason) = policy::response_forbids_storing(&response.headers) {
            self.inner.collapser.mark_pass(key.id());
            return Err(reason);
        }
        let canonical = policy::canonical_request(request, key);
        let checked = policy::check_storable(
            &canonical,
            &request.method,
            response,
            response_time,
            self.inner.cfg.max_object_size,
            rule,
        );
        let vary = match checked {
            Ok(ok) => {
                self.inner.collapser.clear_pass(key.id());
                ok
            }
            Err(reason) => {
                if reason.is_about_the_response() {
                    self.inner.collapser.mark_pass(key.id());
                }
                return Err(reason);
            }
        };
        let primary = key.id();
        let (id, marker) = if vary.is_empty() {
            (primary, None)
        } else {
            // Reuse the current marker if it names the same headers, else a new one.
            let inner = self.inner.clone();
            let current = tokio::task::spawn_blocking(move || inner.load(primary))
                .await
                .ok()
                .flatten()
                .filter(|e| e.meta.kind == Kind::VaryMarker && e.meta.vary == vary);
            match current {
                Some(m) => (
                    key.variant_id(m.meta.generation, &vary, &canonical.headers),
                    None,
                ),
                None => {
                    let generation = new_generation();
                    let marker = Meta::vary_marker(key.as_str(), vary.clone(), generation);
                    (
                        key.variant_id(generation, &vary, &canonical.headers),
                        Some((primary, marker)),
                    )
                }
            }
        };
        let mut meta = Meta {
            kind: Kind::Object,
            key: key.as_str().to_string(),
            vary,
            generation: 0,
            status: response.status.as_u16(),
            headers: Vec::new(),
            request_time_ms: to_ms(request_time),
            response_time_ms: to_ms(response_time),
        };
        meta.set_headers(&policy::without_per_user(&response.headers));
        let expected_len = response
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            // A stored part must hold exactly the bytes its range names.
            .or_else(|| {
                crate::conditional::stored_part(&response.headers)
                    .filter(|_| response.status == http::StatusCode::PARTIAL_CONTENT)
                    .map(|p| p.last - p.first + 1)
            });
        Ok(StoreWriter::start(
            self.inner.clone(),
            Plan {
                id,
                meta,
                marker,
                expected_len,
            },
        ))
    }

    /// Updates a stale stored response from the 304 that revalidated it
    /// (RFC 9111 §4.3.4) and returns it, fresh again. The updated response
    /// is checked for storability like a new one: when the 304 forbids
    /// storing it, the stored copy is removed and the answer is
    /// [`CacheError::NotStorable`].
    pub async fn refresh(
        &self,
        stale: Hit,
        key: &CacheKey,
        request: &request::Parts,
        not_modified: &response::Parts,
        response_time: SystemTime,
    ) -> Result<Hit, CacheError> {
        let old = stale.entry.clone();
        let stored_headers = old.headers.clone();
        let not_modified = policy::with_bounded_age(not_modified);
        let merged = policy::merge_not_modified(&stored_headers, &not_modified.headers);
        let mut parts = http::Response::new(()).into_parts().0;
        parts.status = old.meta.status();
        parts.headers = merged;
        let canonical = policy::canonical_request(request, key);
        let checked = policy::check_storable(
            &canonical,
            &Method::GET,
            &parts,
            response_time,
            self.inner.cfg.max_object_size,
            // A 304 means the response has validators: reusable without a rule.
            None,
        );
        if let Err(reason) = checked {
            self.evict(&Hit {
                entry: old,
                inner: self.inner.clone(),
                ruled: None,
            })
            .await;
            return Err(CacheError::NotStorable(reason));
        }
        let mut meta = old.meta.clone();
        meta.set_headers(&parts.headers);
        meta.response_time_ms = to_ms(response_time);
        meta.request_time_ms = to_ms(response_time);
        let inner = self.inner.clone();
        let id = old.id;
        let rewritten = {
            let meta = meta.clone();
            let old = old.clone();
            let inner = inner.clone();
            tokio::task::spawn_blocking(move || rewrite(&inner, &old, &meta))
                .await
                .map_err(|e| CacheError::Io(std::io::Error::other(e.to_string())))?
        };
        let usage = match rewritten {
            Ok(usage) => Some(usage),
            Err(e) if old.body.is_some() => {
                // The body is in memory; keep serving it even if the disk copy
                // could not be rewritten.
                tracing::warn!(error = %e, "could not rewrite refreshed cache object");
                old.usage.clone()
            }
            Err(e) => return Err(e),
        };
        let entry = Arc::new(Entry::new(
            id,
            meta,
            old.body_len,
            old.body.clone(),
            usage,
            inner.cfg.heuristic_max,
        ));
        inner.keep_in_memory(&entry);
        Ok(Hit {
            entry,
            inner,
            ruled: None,
        })
    }
}

/// Rewrites an object file with new meta and the same body. The object's
/// usage (its hit count) carries over: it is the same response, refreshed.
fn rewrite(inner: &Arc<Inner>, old: &Entry, meta: &Meta) -> Result<Arc<Usage>, CacheError> {
    let dir = &inner.cfg.dir;
    let mut temp = disk::TempObject::create(dir, old.id, meta)?;
    match &old.body {
        Some(bytes) => temp.write(bytes)?,
        None => {
            let mut file = std::fs::File::open(disk::object_path(dir, old.id))?;
            let head = disk::read_head(&mut file).map_err(|e| match e {
                ReadError::Io(e) => CacheError::Io(e),
                ReadError::Missing => CacheError::Io(std::io::ErrorKind::NotFound.into()),
                ReadError::Corrupt(why) => CacheError::Corrupt(why.into()),
            })?;
            if head.body_len != old.body_len {
                return Err(CacheError::Corrupt("object changed during refresh".into()));
            }
            use std::io::{Seek, SeekFrom};
            file.seek(SeekFrom::Start(head.body_start))?;
            temp.copy_from(&mut file, head.body_len)?;
        }
    }
    let size = temp.commit(&disk::object_path(dir, old.id))?;
    let usage = old.usage.clone().unwrap_or_else(|| Usage::new(tick()));
    usage
        .last_used
        .store(tick(), std::sync::atomic::Ordering::Relaxed);
    inner
        .index
        .insert(old.id, size, usage.clone(), About::of(meta));
    Ok(usage)
}

fn new_generation() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::cache::Lookup;
    use crate::cache::test_support::{body_of, config, get, key_of, ok, store};

    #[tokio::test]
    async fn an_unfinished_or_short_store_is_never_visible() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(config(dir.path())).unwrap();
        let req = get("http://a.test/x", &[]);
        let now = SystemTime::now();
        let mut w = cache
            .begin_store(
                &key_of(&req),
                &req,
                &ok(&[("cache-control", "max-age=60")]),
                now,
                now,
            )
            .await
            .unwrap();
        w.push(&Bytes::from_static(b"part"));
        drop(w);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(matches!(
            cache.lookup(&req, &key_of(&req)).await,
            Lookup::Miss(_)
        ));
        let mut w = cache
            .begin_store(
                &key_of(&req),
                &req,
                &ok(&[("cache-control", "max-age=60"), ("content-length", "10")]),
                now,
                now,
            )
            .await
            .unwrap();
        w.push(&Bytes::from_static(b"short"));
        assert!(w.finish().await.is_err());
        assert!(matches!(
            cache.lookup(&req, &key_of(&req)).await,
            Lookup::Miss(_)
        ));
        let leftovers = std::fs::read_dir(dir.path().join(disk::TMP))
            .unwrap()
            .flatten()
            .flat_map(|shard| std::fs::read_dir(shard.path()).unwrap().flatten())
            .count();
        assert_eq!(leftovers, 0);
    }

    #[tokio::test]
    async fn a_304_refreshes_headers_and_keeps_the_body() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(config(dir.path())).unwrap();
        let req = get("http://a.test/r", &[]);
        store(
            &cache,
            &req,
            &ok(&[
                ("cache-control", "max-age=0"),
                ("etag", "\"1\""),
                ("x-v", "old"),
            ]),
            b"body",
        )
        .await;
        let Lookup::Stale(stale) = cache.lookup(&req, &key_of(&req)).await else {
            panic!("stale")
        };
        assert_eq!(stale.validators()[0].1, "\"1\"");
        let mut nm = ok(&[
            ("cache-control", "max-age=60"),
            ("etag", "\"1\""),
            ("x-v", "new"),
        ]);
        nm.status = http::StatusCode::NOT_MODIFIED;
        let hit = cache
            .refresh(stale.hit, &key_of(&req), &req, &nm, SystemTime::now())
            .await
            .unwrap();
        let resp = hit.into_response(&req);
        assert_eq!(resp.headers()["x-v"], "new");
        let Lookup::Fresh(hit) = cache.lookup(&req, &key_of(&req)).await else {
            panic!("fresh after refresh")
        };
        assert_eq!(body_of(hit, &req).await.1, Bytes::from_static(b"body"));
    }

    #[tokio::test]
    async fn a_large_replacement_is_served_instead_of_the_small_copy_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.memory_object_max = 10_000;
        let cache = Cache::open(cfg).unwrap();
        let req = get("http://a.test/grows", &[]);
        let fresh = ok(&[("cache-control", "max-age=60")]);
        store(&cache, &req, &fresh, b"small").await;
        let large = vec![7u8; 50_000];
        store(&cache, &req, &fresh, &large).await;
        let Lookup::Fresh(hit) = cache.lookup(&req, &key_of(&req)).await else {
            panic!("stored")
        };
        assert_eq!(body_of(hit, &req).await.1.as_ref(), &large[..]);
    }
}
