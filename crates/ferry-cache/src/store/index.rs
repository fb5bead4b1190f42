//! What is on disk, for size accounting and eviction: each object's size and
//! when it was last used. Filled by a background scan at start-up (so opening
//! the cache is instant whatever its size) and kept current by stores, hits
//! and removals. Sharded so that hits on different objects do not contend.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::key::ObjectId;

const SHARDS: usize = 32;

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

#[derive(Debug, Clone)]
struct Slot {
    size: u64,
    last_used: Arc<AtomicU64>,
}

#[derive(Debug, Default)]
pub struct Index {
    shards: [Mutex<HashMap<ObjectId, Slot>>; SHARDS],
    total: AtomicU64,
    scanned: AtomicBool,
}

impl Index {
    fn shard(&self, id: ObjectId) -> &Mutex<HashMap<ObjectId, Slot>> {
        &self.shards[(id.0 as usize) % SHARDS]
    }

    /// Records an object of `size` bytes; returns its last-used clock, which
    /// hits update without taking a lock.
    pub fn insert(&self, id: ObjectId, size: u64, last_used: u64) -> Arc<AtomicU64> {
        let mut shard = self.shard(id).lock().unwrap_or_else(|p| p.into_inner());
        let clock = Arc::new(AtomicU64::new(last_used));
        let old = shard.insert(
            id,
            Slot {
                size,
                last_used: clock.clone(),
            },
        );
        if let Some(old) = old {
            self.total.fetch_sub(old.size, Ordering::Relaxed);
        }
        self.total.fetch_add(size, Ordering::Relaxed);
        clock
    }

    /// Adds what the start-up scan found, unless a store already recorded it.
    pub fn insert_scanned(&self, id: ObjectId, size: u64, last_used: u64) {
        let mut shard = self.shard(id).lock().unwrap_or_else(|p| p.into_inner());
        if let std::collections::hash_map::Entry::Vacant(v) = shard.entry(id) {
            v.insert(Slot {
                size,
                last_used: Arc::new(AtomicU64::new(last_used)),
            });
            self.total.fetch_add(size, Ordering::Relaxed);
        }
    }

    pub fn clock(&self, id: ObjectId) -> Option<Arc<AtomicU64>> {
        let shard = self.shard(id).lock().unwrap_or_else(|p| p.into_inner());
        shard.get(&id).map(|s| s.last_used.clone())
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
                    .map(|(id, s)| (s.last_used.load(Ordering::Relaxed), *id, s.size)),
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

    #[test]
    fn accounting_and_lru_victims() {
        let index = Index::default();
        index.insert(id(1), 100, 10);
        index.insert(id(2), 100, 30);
        let clock = index.insert(id(3), 100, 20);
        assert_eq!(index.total_bytes(), 300);
        // Replacing an object adjusts the total.
        index.insert(id(2), 50, 30);
        assert_eq!(index.total_bytes(), 250);
        // A hit on 3 makes 1 the least recently used.
        clock.store(40, Ordering::Relaxed);
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
}
