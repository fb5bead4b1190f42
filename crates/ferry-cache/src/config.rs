//! The cache's settings, with the defaults documented in `ferry.example.toml`.

use std::path::PathBuf;
use std::time::Duration;

/// How the cache is sized and where it lives.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    pub dir: PathBuf,
    /// Most bytes of objects kept on disk; least recently used go first beyond it.
    pub max_size: u64,
    /// Largest response stored.
    pub max_object_size: u64,
    /// Bytes of small hot objects kept in memory.
    pub memory_size: u64,
    /// Objects up to this size may live in the memory tier.
    pub memory_object_max: u64,
    /// Cap on heuristic freshness (RFC 9111 §4.2.2), which is otherwise 10% of
    /// the time since `Last-Modified`.
    pub heuristic_max: Duration,
}

impl CacheConfig {
    pub fn new(dir: PathBuf) -> Self {
        CacheConfig {
            dir,
            max_size: 1 << 30,
            max_object_size: 64 << 20,
            memory_size: 64 << 20,
            memory_object_max: 1 << 20,
            heuristic_max: Duration::from_secs(24 * 3600),
        }
    }
}
