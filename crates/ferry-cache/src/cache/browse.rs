//! The cache browser behind the dashboard: stored objects listed by URL
//! ([`Cache::browse`]), one object in detail ([`Cache::object_detail`]) and
//! one object removed by its id ([`Cache::purge_object`]; a whole URL, all
//! its variants, is [`Cache::purge`]).
//!
//! Listing reads only the index in memory, never the object files: each
//! index slot holds the object's URL, status and store time, recorded when
//! it is stored or first read. Objects already on disk at start-up are found
//! by the scan (names and sizes only) and then described by one background
//! pass that reads each one's head once (`scan.rs`); until it is done
//! ([`CacheStats::browse_complete`](super::CacheStats)) they are not
//! listed. That pass is the one read of every file, once per start, off the
//! request path (100,000 objects: about 1.5 s after the scan, warm page
//! cache); `ferry cache ls` instead reads every head on each call.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::handle::Cache;
use crate::entry::Entry;
use crate::inner::Inner;
use crate::key::ObjectId;
use crate::meta::{Kind, from_ms};
use crate::policy::{self, Verdict};
use crate::store::disk;
use crate::store::index::About;

/// Which stored objects [`Cache::browse`] lists, and in what order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BrowseQuery {
    /// Matched against the URL (the normalized cache key), ignoring ASCII
    /// case; empty matches every object.
    pub text: String,
    /// Match `text` as the start of the URL rather than anywhere in it.
    pub prefix: bool,
    pub order: BrowseOrder,
    /// Most objects returned (at most [`BrowseQuery::MAX_LIMIT`]).
    pub limit: usize,
}

impl BrowseQuery {
    /// The most objects one call returns, whatever `limit` asks for.
    pub const MAX_LIMIT: usize = 10_000;
}

impl Default for BrowseQuery {
    /// Every object, most recently stored first, 100 of them.
    fn default() -> Self {
        BrowseQuery {
            text: String::new(),
            prefix: false,
            order: BrowseOrder::Recent,
            limit: 100,
        }
    }
}

/// The order of [`Cache::browse`]'s answer; ties go to the most recently stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BrowseOrder {
    /// Most recently stored (or refreshed by a 304) first.
    #[default]
    Recent,
    /// Largest on disk first.
    Largest,
    /// Most hits since the proxy started first.
    MostHit,
}

/// One stored response, as listed by [`Cache::browse`]. A URL whose
/// responses vary (`Vary`) has one per variant, each with its own `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectSummary {
    /// Names the stored object: pass it to [`Cache::object_detail`] and
    /// [`Cache::purge_object`]. 32 hex digits.
    pub id: String,
    /// The normalized URL it is stored under.
    pub url: String,
    pub status: u16,
    /// Its file's size on disk: head (stored headers) and body.
    pub bytes: u64,
    /// Responses served from it since the proxy started (or since it was
    /// stored, if later); kept in memory only. See [`Hit::into_response`](super::Hit::into_response).
    pub hits: u64,
    /// When the response was received from the origin, or last refreshed by
    /// a 304. Serialized as seconds since the Unix epoch.
    #[serde(serialize_with = "unix_secs")]
    pub stored_at: SystemTime,
}

/// Everything about one stored response ([`Cache::object_detail`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectDetail {
    pub id: String,
    pub url: String,
    pub status: u16,
    /// The response headers as stored (per-user and hop-by-hop headers are
    /// never stored); values that are not UTF-8 are shown lossily.
    pub headers: Vec<(String, String)>,
    /// The file's size on disk: head and body.
    pub bytes: u64,
    /// The body's length.
    pub body_bytes: u64,
    /// As in [`ObjectSummary::hits`].
    pub hits: u64,
    /// As in [`ObjectSummary::stored_at`].
    #[serde(serialize_with = "unix_secs")]
    pub stored_at: SystemTime,
    /// Freshness lifetime (RFC 9111 §4.2.1), as the cache computes it.
    pub lifetime_secs: u64,
    /// Current age (RFC 9111 §4.2.3).
    pub age_secs: u64,
    /// Whether it would answer a plain request now without revalidation.
    pub fresh: bool,
    /// The request headers it varies on (lower case); empty if it does not vary.
    pub vary: Vec<String>,
    /// When it varies: the other stored responses for the same URL, most
    /// recent first. These may include variants of an earlier `Vary` that no
    /// request reaches any more, until they are evicted or purged.
    pub variants: Vec<ObjectSummary>,
}

fn unix_secs<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}

impl Cache {
    /// Stored responses whose URL matches `query`, in its order, at most
    /// `query.limit` ([`BrowseQuery::MAX_LIMIT`] at most) of them.
    ///
    /// Reads the index in memory only, never the files: one pass over it,
    /// one shard lock at a time, each held while that shard's objects are
    /// matched (measured over 100,000 objects, release build: 3.5 ms for the
    /// pass, 17 ms to return 10,000 rows; a lookup served from the memory
    /// tier takes none of these locks). Memory beyond the answer is bounded
    /// by the limit, whatever the number of objects. Objects the start-up scan found are
    /// listed once described (see [`super::CacheStats::browse_complete`]).
    pub fn browse(&self, query: &BrowseQuery) -> Vec<ObjectSummary> {
        let needle = query.text.as_bytes();
        let prefix = query.prefix;
        select(
            &self.inner,
            |_, about| url_matches(about.url.as_bytes(), needle, prefix),
            query.order,
            query.limit,
        )
    }

    /// The stored response named `id` (an [`ObjectSummary::id`]), with its
    /// headers and freshness; `None` if nothing is stored under it (or it is
    /// not a response but a `Vary` marker). Reads its file's head when it is
    /// not in the memory tier; looking does not count as a hit or a use.
    pub async fn object_detail(&self, id: &str) -> Option<ObjectDetail> {
        let id = ObjectId::from_hex(id)?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || detail(&inner, id))
            .await
            .ok()
            .flatten()
    }

    /// Removes the one stored response named `id` (an [`ObjectSummary::id`],
    /// e.g. a single variant); `true` if there was one. To remove everything
    /// stored for a URL, as the proxy's `PURGE` method does, use
    /// [`Cache::purge`] with the URL's [`CacheKey`](crate::CacheKey).
    pub async fn purge_object(&self, id: &str) -> bool {
        let Some(id) = ObjectId::from_hex(id) else {
            return false;
        };
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.remove(id))
            .await
            .unwrap_or(false)
    }
}

/// Whether `url` contains `needle` (starts with it, if `prefix`), ignoring
/// ASCII case (cache keys are ASCII).
fn url_matches(url: &[u8], needle: &[u8], prefix: bool) -> bool {
    if prefix {
        url.get(..needle.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(needle))
    } else {
        needle.is_empty()
            || url
                .windows(needle.len())
                .any(|w| w.eq_ignore_ascii_case(needle))
    }
}

/// The first `limit` stored responses `keep` accepts, in `order`: one pass
/// over the index keeping the best `limit` in a heap, then the winners'
/// details copied out.
fn select(
    inner: &Inner,
    mut keep: impl FnMut(ObjectId, &About) -> bool,
    order: BrowseOrder,
    limit: usize,
) -> Vec<ObjectSummary> {
    let limit = limit.min(BrowseQuery::MAX_LIMIT);
    if limit == 0 {
        return Vec::new();
    }
    // A min-heap of the best so far: its top is the first to give way.
    let mut best: BinaryHeap<Reverse<(u64, u64, ObjectId)>> =
        BinaryHeap::with_capacity(limit.min(1024) + 1);
    inner.index.for_each_described(|id, size, usage, about| {
        if about.kind != Kind::Object || !keep(id, about) {
            return;
        }
        let rank = match order {
            BrowseOrder::Recent => (about.stored_at_ms, size),
            BrowseOrder::Largest => (size, about.stored_at_ms),
            BrowseOrder::MostHit => (usage.hits(), about.stored_at_ms),
        };
        let item = Reverse((rank.0, rank.1, id));
        if best.len() < limit {
            best.push(item);
        } else if let Some(mut worst) = best.peek_mut() {
            if item < *worst {
                *worst = item;
            }
        }
    });
    best.into_sorted_vec()
        .into_iter()
        .filter_map(|Reverse((_, _, id))| summary(inner, id))
        .collect()
}

fn summary(inner: &Inner, id: ObjectId) -> Option<ObjectSummary> {
    let slot = inner.index.get(id)?;
    let about = slot.about.filter(|a| a.kind == Kind::Object)?;
    Some(ObjectSummary {
        id: id.to_hex(),
        url: about.url.into(),
        status: about.status,
        bytes: slot.size,
        hits: slot.hits,
        stored_at: from_ms(about.stored_at_ms),
    })
}

/// The ids of every stored response (variants included) under `url`.
pub(super) fn objects_at(inner: &Inner, url: &str) -> Vec<ObjectId> {
    let mut ids = Vec::new();
    inner.index.for_each_described(|id, _, _, about| {
        if about.kind == Kind::Object && &*about.url == url {
            ids.push(id);
        }
    });
    ids
}

fn detail(inner: &Arc<Inner>, id: ObjectId) -> Option<ObjectDetail> {
    let slot = inner.index.get(id);
    if slot.is_none() && inner.index.is_complete() {
        return None;
    }
    let path = disk::object_path(&inner.cfg.dir, id);
    // From memory if it is there (`peek`: looking is not a use), else only
    // the head of its file, through the same `Entry` a lookup builds, so
    // freshness is computed by the same policy code.
    let entry = match inner.memory.peek(&id) {
        Some(entry) => entry,
        None => {
            let mut file = std::fs::File::open(&path).ok()?;
            let head = disk::read_head(&mut file).ok()?;
            Arc::new(Entry::new(
                id,
                head.meta,
                head.body_len,
                None,
                None,
                inner.cfg.heuristic_max,
            ))
        }
    };
    if entry.meta.kind != Kind::Object {
        return None;
    }
    let bytes = match &slot {
        Some(slot) => slot.size,
        None => std::fs::metadata(&path).ok()?.len(),
    };
    let hits = slot
        .as_ref()
        .map(|s| s.hits)
        .or_else(|| entry.usage.as_ref().map(|u| u.hits()))
        .unwrap_or(0);
    let now = SystemTime::now();
    let stored = entry.stored(now);
    let plain_get = http::Request::new(()).into_parts().0;
    let fresh = policy::evaluate(&stored, &plain_get) == Verdict::Fresh;
    let url = entry.meta.key.clone();
    let variants = if entry.meta.vary.is_empty() {
        Vec::new()
    } else {
        select(
            inner,
            |other, about| other != id && *about.url == *url,
            BrowseOrder::Recent,
            BrowseQuery::MAX_LIMIT,
        )
    };
    Some(ObjectDetail {
        id: id.to_hex(),
        status: entry.meta.status,
        headers: entry
            .headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_string(), value)
            })
            .collect(),
        bytes,
        body_bytes: entry.body_len,
        hits,
        stored_at: entry.response_time,
        lifetime_secs: entry.lifetime.as_secs(),
        age_secs: stored.age.as_secs(),
        fresh,
        vary: entry.meta.vary.clone(),
        variants,
        url,
    })
}

#[cfg(test)]
mod tests;
