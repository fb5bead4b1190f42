//! Looking a request up: memory first, then the files (following a vary
//! marker to the variant), then the RFC 9111 verdict. Owns what a lookup
//! returns ([`Lookup`], [`Hit`], [`Stale`], [`Miss`]) and a hit's response.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, request};

use super::handle::Cache;
use crate::body::CacheBody;
use crate::conditional::{self, BodyPlan};
use crate::entry::Entry;
use crate::inner::Inner;
use crate::key::CacheKey;
use crate::meta::Kind;
use crate::policy::{self, FreshnessRule, StaleRules, Verdict};
use crate::store::disk;

/// The outcome of a lookup.
pub enum Lookup {
    /// Fresh: answer from the cache.
    Fresh(Hit),
    /// Stored but stale: revalidate (or serve it as `rules` allow).
    Stale(Stale),
    /// Nothing usable stored.
    Miss(MissKind),
    /// `Cache-Control: only-if-cached` and nothing usable (RFC 9111 §5.2.1.7): 504.
    OnlyIfCachedMiss,
    /// Not a request the cache answers (method, or an uncacheable target).
    Bypass,
}

/// Why nothing was found (RFC 9211 `fwd` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissKind {
    /// Nothing stored for the URI.
    UriMiss,
    /// Stored responses, but none for this request's `Vary` header values.
    VaryMiss,
    /// A partial response is stored that does not hold the range asked for.
    Partial,
}

impl MissKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MissKind::UriMiss => "uri-miss",
            MissKind::VaryMiss => "vary-miss",
            MissKind::Partial => "partial",
        }
    }
}

/// A stored response that may answer the request.
pub struct Hit {
    pub(super) entry: Arc<Entry>,
    pub(super) inner: Arc<Inner>,
    /// The freshness an operator's rule gave it, and the rule's name, when
    /// a rule decided it (else the response's own, in the entry).
    pub(super) ruled: Option<(Duration, Arc<str>)>,
}

pub struct Stale {
    pub hit: Hit,
    pub rules: StaleRules,
}

impl Stale {
    /// Headers to add to the request sent upstream so the origin can answer 304.
    pub fn validators(&self) -> Vec<(HeaderName, HeaderValue)> {
        policy::validators(&self.hit.entry.headers)
    }
}

impl Hit {
    pub fn status(&self) -> http::StatusCode {
        self.entry.meta.status()
    }

    /// Seconds the response has left before it is stale (negative: stale for that long).
    pub fn ttl(&self, now: SystemTime) -> i64 {
        match &self.ruled {
            Some((lifetime, _)) => self.entry.ttl_with(*lifetime, now),
            None => self.entry.ttl(now),
        }
    }

    /// The operator's cache rule that decided this response's freshness.
    pub fn rule(&self) -> Option<&str> {
        self.ruled.as_ref().map(|(_, name)| &**name)
    }

    /// The response this stored object gives to `request` (its own conditional
    /// and range headers, and HEAD, are honoured).
    ///
    /// This is where a hit is counted for the cache browser
    /// ([`Cache::browse`]): once per response served from the stored object,
    /// whether it was fresh, served stale (`stale-while-revalidate`,
    /// `stale-if-error`, origin unreachable) or revalidated by a 304 (the
    /// [`Cache::refresh`]ed hit). A stale hit that is replaced by a new
    /// response from the origin, or a lookup that is never answered from (a
    /// background revalidation's), is not a hit. The count is an atomic add
    /// on the object's usage, shared with the index: no lock.
    pub fn into_response(self, request: &request::Parts) -> http::Response<CacheBody> {
        self.entry.count_hit();
        let (parts, plan) = conditional::hit_response(
            &self.entry.stored(SystemTime::now()),
            request,
            self.entry.body_len,
        );
        let len = self.entry.body_len;
        let body = match (plan, &self.entry.body) {
            (BodyPlan::None, _) => CacheBody::empty(),
            (_, _) if len == 0 => CacheBody::empty(),
            (BodyPlan::Full, Some(bytes)) => CacheBody::memory(bytes.clone()),
            (BodyPlan::Range(start, end), Some(bytes)) => {
                CacheBody::memory(bytes.slice(start as usize..=end as usize))
            }
            (BodyPlan::Full, None) => self.file_body(0, len - 1),
            (BodyPlan::Range(start, end), None) => self.file_body(start, end),
        };
        http::Response::from_parts(parts, body)
    }

    fn file_body(&self, start: u64, end: u64) -> CacheBody {
        let inner = self.inner.clone();
        let id = self.entry.id;
        CacheBody::file(
            disk::object_path(&self.inner.cfg.dir, id),
            self.entry.body_len,
            start,
            end,
            move || {
                inner.counters.corrupt.fetch_add(1, Ordering::Relaxed);
                inner.forget(id);
            },
        )
    }
}

impl Cache {
    /// Looks up a stored response for `request`, whose key is `key`
    /// ([`Cache::lookup_ruled`] without an operator's rule).
    pub async fn lookup(&self, request: &request::Parts, key: &CacheKey) -> Lookup {
        self.lookup_ruled(request, key, None).await
    }

    /// Looks up a stored response for `request`, whose key is `key`, its
    /// freshness decided by `rule` where the rule applies
    /// ([`FreshnessRule::lifetime`]).
    pub async fn lookup_ruled(
        &self,
        request: &request::Parts,
        key: &CacheKey,
        rule: Option<&FreshnessRule>,
    ) -> Lookup {
        if request.method != Method::GET && request.method != Method::HEAD {
            return Lookup::Bypass;
        }
        let has_directives = request.headers.contains_key(header::CACHE_CONTROL)
            || request.headers.contains_key(header::PRAGMA);
        let only_if_cached =
            has_directives && policy::directives(&request.headers).contains_key("only-if-cached");
        // Memory hits on objects that do not vary return at once; anything
        // else (variants, files) is looked up off the async threads.
        let found = match self.inner.memory.get(&key.id()) {
            Some(e) if e.meta.kind == Kind::Object => {
                e.touch();
                (Some(e), false)
            }
            // Once the index knows every file, a URL it lacks is a miss
            // without touching the disk.
            None if self.inner.index.is_complete() && !self.inner.index.contains(key.id()) => {
                (None, false)
            }
            _ => {
                let inner = self.inner.clone();
                let lookup_key = key.clone();
                let headers = policy::canonical_request(request, key).headers;
                tokio::task::spawn_blocking(move || find(&inner, &lookup_key, &headers))
                    .await
                    .unwrap_or((None, false))
            }
        };
        let (entry, varies) = found;
        let miss = |kind| {
            if only_if_cached {
                Lookup::OnlyIfCachedMiss
            } else {
                Lookup::Miss(kind)
            }
        };
        let Some(entry) = entry else {
            return miss(if varies {
                MissKind::VaryMiss
            } else {
                MissKind::UriMiss
            });
        };
        let mut hit = Hit {
            entry,
            inner: self.inner.clone(),
            ruled: None,
        };
        // A stored part answers only a range request wholly inside it
        // (RFC 9111 §3.3); anything else is fetched (and may replace it).
        if let Some(part) = hit.entry.partial {
            if !conditional::part_answers(&part, request, &hit.entry.headers) {
                return miss(MissKind::Partial);
            }
        }
        let mut stored = hit.entry.stored(SystemTime::now());
        let ruled = rule.and_then(|r| {
            let lifetime = r.lifetime(stored.status, stored.headers, stored.lifetime)?;
            Some((lifetime, r))
        });
        let mut fresh_whatever_the_client_says = false;
        if let Some((lifetime, r)) = ruled {
            stored.lifetime = lifetime;
            fresh_whatever_the_client_says =
                r.ignores_client_revalidation() && stored.age < lifetime;
        }
        let verdict = if fresh_whatever_the_client_says {
            Verdict::Fresh
        } else {
            policy::evaluate(&stored, request)
        };
        hit.ruled = ruled.map(|(lifetime, r)| (lifetime, r.name.clone()));
        match verdict {
            Verdict::Fresh => Lookup::Fresh(hit),
            Verdict::Stale(_) if only_if_cached => Lookup::OnlyIfCachedMiss,
            Verdict::Stale(rules) => Lookup::Stale(Stale { hit, rules }),
        }
    }
}

/// Follows a marker to the variant the request selects.
/// Returns (entry, whether the URI has variants).
fn find(inner: &Arc<Inner>, key: &CacheKey, request: &HeaderMap) -> (Option<Arc<Entry>>, bool) {
    let Some(entry) = inner.load(key.id()) else {
        return (None, false);
    };
    if entry.meta.kind == Kind::Object {
        return (Some(entry), false);
    }
    let variant = key.variant_id(entry.meta.generation, &entry.meta.vary, request);
    (
        inner.load(variant).filter(|e| e.meta.kind == Kind::Object),
        true,
    )
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::cache::test_support::{body_of, config, get, key_of, ok, store};

    #[tokio::test]
    async fn store_then_hit_from_memory_and_from_disk_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let req = get("http://a.test/x", &[]);
        let big: Vec<u8> = (0..3_000_000u32).map(|i| i as u8).collect();
        {
            let cache = Cache::open(config(dir.path())).unwrap();
            assert!(matches!(
                cache.lookup(&req, &key_of(&req)).await,
                Lookup::Miss(MissKind::UriMiss)
            ));
            store(
                &cache,
                &req,
                &ok(&[("cache-control", "max-age=60")]),
                b"hello",
            )
            .await;
            let Lookup::Fresh(hit) = cache.lookup(&req, &key_of(&req)).await else {
                panic!("hit expected")
            };
            assert_eq!(
                body_of(hit, &req).await,
                (200, Bytes::from_static(b"hello"))
            );
            let big_req = get("http://a.test/big", &[]);
            store(
                &cache,
                &big_req,
                &ok(&[("cache-control", "max-age=60")]),
                &big,
            )
            .await;
        }
        let cache = Cache::open(config(dir.path())).unwrap();
        let Lookup::Fresh(hit) = cache.lookup(&req, &key_of(&req)).await else {
            panic!("kept across reopen")
        };
        assert_eq!(body_of(hit, &req).await.1, Bytes::from_static(b"hello"));
        let big_req = get("http://a.test/big", &[]);
        let Lookup::Fresh(hit) = cache.lookup(&big_req, &key_of(&big_req)).await else {
            panic!("big kept")
        };
        assert_eq!(body_of(hit, &big_req).await.1.as_ref(), &big[..]);
    }

    #[tokio::test]
    async fn a_rule_makes_a_response_without_freshness_a_hit_and_says_so() {
        use crate::policy::{FreshnessRule, NotStored};
        use std::time::Duration;
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(config(dir.path())).unwrap();
        let req = get("http://mirror.test/pool/a_1.0_all.deb", &[]);
        let bare = ok(&[("content-type", "application/vnd.debian.binary-package")]);
        let now = SystemTime::now();
        // Without a rule such a response is not worth storing.
        let refused = cache
            .begin_store(&key_of(&req), &req, &bare, now, now)
            .await;
        assert!(matches!(refused, Err(NotStored::NotReusable)));
        let rule = FreshnessRule {
            name: "debian".into(),
            immutable: true,
            ..Default::default()
        };
        let mut w = cache
            .begin_store_ruled(&key_of(&req), &req, &bare, (now, now), Some(&rule))
            .await
            .unwrap();
        w.push(&Bytes::from_static(b"package"));
        w.finish().await.unwrap();
        let Lookup::Fresh(hit) = cache.lookup_ruled(&req, &key_of(&req), Some(&rule)).await else {
            panic!("fresh under the rule")
        };
        assert_eq!(hit.rule(), Some("debian"));
        assert!(hit.ttl(SystemTime::now()) > 300 * 24 * 3600);
        // Immutable: a client's request for revalidation is answered as is.
        let reload = get(
            "http://mirror.test/pool/a_1.0_all.deb",
            &[("cache-control", "no-cache")],
        );
        assert!(matches!(
            cache
                .lookup_ruled(&reload, &key_of(&reload), Some(&rule))
                .await,
            Lookup::Fresh(_)
        ));
        // Without the rule the same object is stale.
        assert!(matches!(
            cache.lookup(&req, &key_of(&req)).await,
            Lookup::Stale(_)
        ));
        // A rule that only fills in freshness honours the client's reload.
        let fresh = FreshnessRule {
            name: "hour".into(),
            fresh: Some(Duration::from_secs(3600)),
            ..Default::default()
        };
        assert!(matches!(
            cache
                .lookup_ruled(&reload, &key_of(&reload), Some(&fresh))
                .await,
            Lookup::Stale(_)
        ));
        // No rule makes shared what the origin keeps private or per user.
        for (name, value) in [
            ("cache-control", "private"),
            ("cache-control", "no-store"),
            ("set-cookie", "session=1"),
        ] {
            let resp = ok(&[(name, value)]);
            let refused = cache
                .begin_store_ruled(&key_of(&req), &req, &resp, (now, now), Some(&rule))
                .await;
            assert!(refused.is_err(), "{name}: {value}");
        }
        let with_auth = get(
            "http://mirror.test/pool/b.deb",
            &[("authorization", "Basic eDp5")],
        );
        let refused = cache
            .begin_store_ruled(
                &key_of(&with_auth),
                &with_auth,
                &bare,
                (now, now),
                Some(&rule),
            )
            .await;
        assert!(matches!(refused, Err(NotStored::Authorization)));
    }
}
