//! Where cached objects live: files on disk (`disk`) and the index of their
//! sizes and use for eviction (`index`). The memory tier is a bounded
//! `quick_cache` in `cache.rs`.

pub mod disk;
pub mod index;
