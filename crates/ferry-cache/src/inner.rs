//! The state shared by the cache handle, the store writers and the background
//! threads: config, index, memory tier, counters. Below both `cache` and
//! `writer`, so neither has to import the other's internals.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc as std_mpsc};

use crate::config::CacheConfig;
use crate::entry::{Entry, MemoryTier};
use crate::key::ObjectId;
use crate::lock::Collapser;
use crate::meta::Kind;
use crate::store::disk::{self, ReadError};
use crate::store::index::{About, Index};

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub stores: AtomicU64,
    pub store_failures: AtomicU64,
    pub evictions: AtomicU64,
    pub corrupt: AtomicU64,
}

pub(crate) struct Inner {
    pub cfg: CacheConfig,
    pub index: Index,
    pub memory: MemoryTier,
    pub collapser: Arc<Collapser>,
    pub evictor: Mutex<std_mpsc::Sender<()>>,
    pub counters: Counters,
    pub journal_offset: Mutex<u64>,
}

impl Inner {
    pub fn remember(&self, entry: Entry) {
        self.keep_in_memory(&Arc::new(entry));
    }

    /// Puts `entry` in the memory tier if it belongs there (vary markers, and
    /// objects small enough); otherwise makes sure no older copy stays there.
    pub fn keep_in_memory(&self, entry: &Arc<Entry>) {
        if entry.meta.kind == Kind::VaryMarker
            || entry.weight() <= self.cfg.memory_object_max + 4096
        {
            self.memory.insert(entry.id, entry.clone());
        } else {
            self.memory.remove(&entry.id);
        }
    }

    pub fn wake_evictor(&self) {
        if self.index.total_bytes() > self.cfg.max_size {
            if let Ok(tx) = self.evictor.lock() {
                let _ = tx.send(());
            }
        }
    }

    pub fn forget(&self, id: ObjectId) {
        self.memory.remove(&id);
        self.index.remove(id);
    }

    pub fn remove(&self, id: ObjectId) -> bool {
        self.memory.remove(&id);
        self.index.remove(id);
        std::fs::remove_file(disk::object_path(&self.cfg.dir, id)).is_ok()
    }

    /// Finds an object or marker: memory first, then its file.
    pub fn load(self: &Arc<Self>, id: ObjectId) -> Option<Arc<Entry>> {
        if let Some(entry) = self.memory.get(&id) {
            entry.touch();
            return Some(entry);
        }
        if self.index.is_complete() && !self.index.contains(id) {
            return None;
        }
        let path = disk::object_path(&self.cfg.dir, id);
        match disk::read(&path, self.cfg.memory_object_max) {
            Ok(loaded) => {
                // Before the start-up scan has reached it, the object is
                // added to the index now, so its use and hits count at once.
                let add = !self.index.is_complete();
                let usage = self
                    .index
                    .found(id, loaded.file_len, add, || About::of(&loaded.meta));
                let entry = Arc::new(Entry::new(
                    id,
                    loaded.meta,
                    loaded.body_len,
                    loaded.body,
                    usage,
                    self.cfg.heuristic_max,
                ));
                entry.touch();
                self.keep_in_memory(&entry);
                Some(entry)
            }
            Err(ReadError::Missing) => {
                self.index.remove(id);
                None
            }
            Err(ReadError::Corrupt(why)) => {
                tracing::warn!(path = %path.display(), why, "damaged cache object removed");
                self.counters.corrupt.fetch_add(1, Ordering::Relaxed);
                self.remove(id);
                None
            }
            Err(ReadError::Io(e)) => {
                tracing::warn!(path = %path.display(), error = %e, "cache read failed");
                None
            }
        }
    }
}
