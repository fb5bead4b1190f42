//! A stored object or vary marker as held in memory, and the memory tier that
//! holds them. Separate so the cache and the writer can share it without
//! depending on each other.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::HeaderMap;

use crate::conditional::StoredPart;
use crate::key::ObjectId;
use crate::meta::Meta;
use crate::policy;
use crate::store::index::{Usage, tick};

/// A stored object or vary marker, as held in memory.
#[derive(Debug)]
pub(crate) struct Entry {
    pub id: ObjectId,
    pub meta: Meta,
    pub body_len: u64,
    /// The body, for objects small enough for the memory tier.
    pub body: Option<Bytes>,
    /// Last use and hits, shared with the index (`None` only for an object
    /// the index no longer holds).
    pub usage: Option<Arc<Usage>>,
    /// The stored response headers, parsed once.
    pub headers: HeaderMap,
    /// How long the response is fresh for (RFC 9111 §4.2.1), computed once.
    pub lifetime: Duration,
    /// The `Age` it arrived with and when it arrived, for its current age.
    pub age_header: Duration,
    pub response_time: SystemTime,
    /// For a stored 206: which bytes of the whole representation it holds.
    pub partial: Option<StoredPart>,
}

impl Entry {
    pub fn new(
        id: ObjectId,
        meta: Meta,
        body_len: u64,
        body: Option<Bytes>,
        usage: Option<Arc<Usage>>,
        heuristic_max: Duration,
    ) -> Entry {
        let mut meta = meta;
        let headers = meta.header_map();
        let lifetime = if meta.kind == crate::meta::Kind::Object {
            policy::freshness_lifetime(meta.status(), &headers, meta.response_time(), heuristic_max)
        } else {
            Duration::ZERO
        };
        // Kept once, as the parsed map; the meta copy is only for writing files.
        meta.headers = Vec::new();
        let partial = (meta.status == 206)
            .then(|| crate::conditional::stored_part(&headers))
            .flatten();
        Entry {
            partial,
            id,
            age_header: policy::age_header(&headers),
            response_time: meta.response_time(),
            meta,
            body_len,
            body,
            usage,
            headers,
            lifetime,
        }
    }

    /// Seconds of freshness left at `now` (negative: stale for that long),
    /// saturating at the ends of the range.
    pub fn ttl(&self, now: SystemTime) -> i64 {
        self.ttl_with(self.lifetime, now)
    }

    /// [`Entry::ttl`] for another freshness lifetime (an operator's rule's).
    pub fn ttl_with(&self, lifetime: Duration, now: SystemTime) -> i64 {
        let age = policy::current_age(self.age_header, self.response_time, now);
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        secs(lifetime).saturating_sub(secs(age))
    }

    pub fn stored(&self, now: SystemTime) -> policy::Stored<'_> {
        policy::Stored {
            status: self.meta.status(),
            headers: &self.headers,
            vary: &self.meta.vary,
            lifetime: self.lifetime,
            age: policy::current_age(self.age_header, self.response_time, now),
        }
    }

    /// Roughly the memory this entry holds (measured: about 4 KiB of
    /// structures and headers per small object), so the memory tier's bound
    /// is a real bound.
    pub fn weight(&self) -> u64 {
        let header_bytes: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 48)
            .sum();
        2048 + header_bytes as u64 + self.body.as_ref().map(|b| b.len() as u64).unwrap_or(0)
    }

    pub fn touch(&self) {
        if let Some(usage) = &self.usage {
            usage.last_used.store(tick(), Ordering::Relaxed);
        }
    }

    /// Counts a response served from this object (an atomic add on the
    /// usage it shares with the index: no lock).
    pub fn count_hit(&self) {
        if let Some(usage) = &self.usage {
            usage.hits.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[derive(Clone)]
pub(crate) struct Weigher;

impl quick_cache::Weighter<ObjectId, Arc<Entry>> for Weigher {
    fn weight(&self, _key: &ObjectId, val: &Arc<Entry>) -> u64 {
        val.weight()
    }
}

pub(crate) type MemoryTier = quick_cache::sync::Cache<ObjectId, Arc<Entry>, Weigher>;
