//! What is on disk, for size accounting, eviction and the cache browser: each
//! object's size, how it has been used, and (once known) its URL, status and
//! when it was stored. Filled by a background scan at start-up (so opening
//! the cache is instant whatever its size) and kept current by stores, hits
//! and removals. Sharded so that hits on different objects do not contend.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::key::ObjectId;
use crate::meta::{Kind, Meta};

pub const SHARDS: usize = 32;

static LAST_TICK: AtomicU64 = AtomicU64::new(0);

/// The "last used" clock: milliseconds since the epoch, made strictly
/// increasing so that objects used in the same millisecond still have an order.
pub fn tick() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    LAST_TICK.fetch_max(now, Ordering::Relaxed);
    LAST_TICK.fetch_add(1, Ordering::Relaxed) + 1
}

/// How an object has been used, shared by its index slot and its entry in
/// memory, so that a hit updates it with atomics alone (no lock).
#[derive(Debug, Default)]
pub struct Usage {
    /// When it was last used ([`tick`]), for LRU eviction.
    pub last_used: AtomicU64,
    /// Responses served from it since this process started (or since it was
    /// stored, if later). In memory only: it starts at 0 on every start-up,
    /// and when a new response replaces the object; a 304 that refreshes it
    /// keeps it.
    pub hits: AtomicU64,
}

impl Usage {
    pub fn new(last_used: u64) -> Arc<Usage> {
        Arc::new(Usage {
            last_used: AtomicU64::new(last_used),
            hits: AtomicU64::new(0),
        })
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }
}

/// What the cache browser shows about an object, taken from its meta when it
/// is stored or first read (objects found by the start-up scan are described
/// by a background pass that reads their heads once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct About {
    pub kind: Kind,
    /// The primary key: the normalized URL.
    pub url: Box<str>,
    pub status: u16,
    /// When the response was received (or last refreshed by a 304), ms since the epoch.
    pub stored_at_ms: u64,
}

impl About {
    pub fn of(meta: &Meta) -> About {
        About {
            kind: meta.kind,
            url: meta.key.as_str().into(),
            status: meta.status,
            stored_at_ms: meta.response_time_ms,
        }
    }
}

#[derive(Debug)]
struct Slot {
    size: u64,
    usage: Arc<Usage>,
    about: Option<About>,
}

/// A copy of what the index holds about one object.
#[derive(Debug, Clone)]
pub struct SlotInfo {
    pub size: u64,
    pub hits: u64,
    pub about: Option<About>,
}

#[derive(Debug, Default)]
pub struct Index {
    shards: [Mutex<HashMap<ObjectId, Slot>>; SHARDS],
    total: AtomicU64,
    scanned: AtomicBool,
    described: AtomicBool,
}

impl Index {
    fn shard(&self, id: ObjectId) -> &Mutex<HashMap<ObjectId, Slot>> {
        &self.shards[(id.0 as usize) % SHARDS]
    }

    fn lock(&self, shard: usize) -> std::sync::MutexGuard<'_, HashMap<ObjectId, Slot>> {
        self.shards[shard % SHARDS]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Records an object of `size` bytes described by `about`, whose use is
    /// `usage` (hits then update it without taking a lock): a new [`Usage`]
    /// for a new object, the old one for an object rewritten in place.
    pub fn insert(&self, id: ObjectId, size: u64, usage: Arc<Usage>, about: About) {
        let mut shard = self.shard(id).lock().unwrap_or_else(|p| p.into_inner());
        let old = shard.insert(
            id,
            Slot {
                size,
                usage,
                about: Some(about),
            },
        );
        if let Some(old) = old {
            self.total.fetch_sub(old.size, Ordering::Relaxed);
        }
        self.total.fetch_add(size, Ordering::Relaxed);
    }

    /// Adds what the start-up scan found, unless a store already recorded it.
    pub fn insert_scanned(&self, id: ObjectId, size: u64, last_used: u64) {
        let mut shard = self.shard(id).lock().unwrap_or_else(|p| p.into_inner());
        if let std::collections::hash_map::Entry::Vacant(v) = shard.entry(id) {
            v.insert(Slot {
                size,
                usage: Usage::new(last_used),
                about: None,
            });
            self.total.fetch_add(size, Ordering::Relaxed);
        }
    }

    /// An object just read from its file (of `size` bytes): its usage, after
    /// describing it if the index did not know what it is yet. An object the
    /// index lacks is added when `add` (the start-up scan has not reached it
    /// yet), so that its hits and use are counted from the first one.
    pub fn found(
        &self,
        id: ObjectId,
        size: u64,
        add: bool,
        about: impl FnOnce() -> About,
    ) -> Option<Arc<Usage>> {
        let mut shard = self.shard(id).lock().unwrap_or_else(|p| p.into_inner());
        match shard.entry(id) {
            std::collections::hash_map::Entry::Occupied(mut o) => {
                let slot = o.get_mut();
                if slot.about.is_none() {
                    slot.about = Some(about());
                }
                Some(slot.usage.clone())
            }
            std::collections::hash_map::Entry::Vacant(v) if add => {
                let usage = Usage::new(tick());
                v.insert(Slot {
                    size,
                    usage: usage.clone(),
                    about: Some(about()),
                });
                self.total.fetch_add(size, Ordering::Relaxed);
                Some(usage)
            }
            std::collections::hash_map::Entry::Vacant(_) => None,
        }
    }

    /// Describes an object the start-up scan found, unless it is gone or was
    /// described meanwhile.
    pub fn describe(&self, id: ObjectId, about: About) {
        let mut shard = self.shard(id).lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = shard.get_mut(&id) {
            slot.about.get_or_insert(about);
        }
    }

    /// The objects of shard `shard` (`0..SHARDS`) not described yet.
    pub fn undescribed(&self, shard: usize) -> Vec<ObjectId> {
        let shard = self.lock(shard);
        shard
            .iter()
            .filter(|(_, s)| s.about.is_none())
            .map(|(id, _)| *id)
            .collect()
    }

    /// Calls `each` with every described object (size, usage, description),
    /// one shard at a time under that shard's lock: `each` must be quick.
    pub fn for_each_described(&self, mut each: impl FnMut(ObjectId, u64, &Usage, &About)) {
        for shard in 0..SHARDS {
            let shard = self.lock(shard);
            for (id, slot) in shard.iter() {
                if let Some(about) = &slot.about {
                    each(*id, slot.size, &slot.usage, about);
                }
            }
        }
    }

    pub fn get(&self, id: ObjectId) -> Option<SlotInfo> {
        let shard = self.shard(id).lock().unwrap_or_else(|p| p.into_inner());
        shard.get(&id).map(|s| SlotInfo {
            size: s.size,
            hits: s.usage.hits(),
            about: s.about.clone(),
        })
    }

    pub fn contains(&self, id: ObjectId) -> bool {
        let shard = self.shard(id).lock().unwrap_or_else(|p| p.into_inner());
        shard.contains_key(&id)
    }

    pub fn remove(&self, id: ObjectId) -> Option<u64> {
        let mut shard = self.shard(id).lock().unwrap_or_else(|p| p.into_inner());
        let slot = shard.remove(&id)?;
        self.total.fetch_sub(slot.size, Ordering::Relaxed);
        Some(slot.size)
    }

    pub fn clear(&self) {
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            for slot in shard.values() {
                self.total.fetch_sub(slot.size, Ordering::Relaxed);
            }
            shard.clear();
        }
    }

    pub fn total_bytes(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    pub fn mark_scanned(&self) {
        self.scanned.store(true, Ordering::Release);
    }

    /// Whether every file on disk is known (the start-up scan has finished).
    pub fn is_complete(&self) -> bool {
        self.scanned.load(Ordering::Acquire)
    }

    pub fn mark_described(&self) {
        self.described.store(true, Ordering::Release);
    }

    /// Whether the pass describing what the start-up scan found has run.
    pub fn is_described(&self) -> bool {
        self.described.load(Ordering::Acquire)
    }

    /// The least recently used objects whose removal brings the total to
    /// `target` bytes or below.
    pub fn victims(&self, target: u64) -> Vec<(ObjectId, u64)> {
        let total = self.total_bytes();
        if total <= target {
            return Vec::new();
        }
        let mut all: Vec<(u64, ObjectId, u64)> = Vec::with_capacity(self.len());
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            all.extend(
                shard
                    .iter()
                    .map(|(id, s)| (s.usage.last_used.load(Ordering::Relaxed), *id, s.size)),
            );
        }
        all.sort_unstable();
        let mut freed = 0;
        let mut out = Vec::new();
        for (_, id, size) in all {
            if total - freed <= target {
                break;
            }
            freed += size;
            out.push((id, size));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> ObjectId {
        ObjectId(n)
    }

    fn about(url: &str) -> About {
        About {
            kind: Kind::Object,
            url: url.into(),
            status: 200,
            stored_at_ms: 1,
        }
    }

    #[test]
    fn accounting_and_lru_victims() {
        let index = Index::default();
        index.insert(id(1), 100, Usage::new(10), about("http://a.test/1"));
        index.insert(id(2), 100, Usage::new(30), about("http://a.test/2"));
        let usage = Usage::new(20);
        index.insert(id(3), 100, usage.clone(), about("http://a.test/3"));
        assert_eq!(index.total_bytes(), 300);
        // Replacing an object adjusts the total.
        index.insert(id(2), 50, Usage::new(30), about("http://a.test/2"));
        assert_eq!(index.total_bytes(), 250);
        // A hit on 3 makes 1 the least recently used.
        usage.last_used.store(40, Ordering::Relaxed);
        assert_eq!(index.victims(200), vec![(id(1), 100)]);
        assert_eq!(index.victims(100).len(), 2);
        assert_eq!(index.victims(0).len(), 3);
        assert!(index.victims(1000).is_empty());
        // The scan does not override what stores recorded.
        index.insert_scanned(id(3), 999, 0);
        assert_eq!(index.total_bytes(), 250);
        assert_eq!(index.remove(id(1)), Some(100));
        assert_eq!(index.total_bytes(), 150);
        index.clear();
        assert_eq!(index.total_bytes(), 0);
        assert_eq!(index.len(), 0);
    }

    #[test]
    fn scanned_objects_are_described_once_and_share_their_usage() {
        let index = Index::default();
        index.insert_scanned(id(7), 100, 0);
        assert_eq!(index.undescribed(7 % SHARDS), vec![id(7)]);
        let mut listed = 0;
        index.for_each_described(|_, _, _, _| listed += 1);
        assert_eq!(listed, 0, "undescribed objects are not listed");

        // Read from its file: described, and its usage is the slot's.
        let usage = index
            .found(id(7), 100, false, || about("http://a.test/7"))
            .unwrap();
        usage.hits.fetch_add(2, Ordering::Relaxed);
        assert!(index.undescribed(7 % SHARDS).is_empty());
        let info = index.get(id(7)).unwrap();
        assert_eq!((info.size, info.hits), (100, 2));
        assert_eq!(info.about, Some(about("http://a.test/7")));
        // A later description does not replace the first.
        index.describe(id(7), about("http://other.test/"));
        assert_eq!(
            index.get(id(7)).unwrap().about,
            Some(about("http://a.test/7"))
        );

        // Unknown to the index: added only while the scan is under way.
        assert!(index.found(id(8), 10, false, || about("x")).is_none());
        assert!(index.found(id(8), 10, true, || about("x")).is_some());
        assert_eq!(index.total_bytes(), 110);
        index.describe(id(9), about("gone"));
        assert!(index.get(id(9)).is_none());
    }
}
