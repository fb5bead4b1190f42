//! The cache's settings and their defaults. This is the one place the
//! defaults live: `ferry proxy`'s `[cache]` section, its flags and `ferry
//! cache` all start from here (and `ferry.example.toml` documents them).

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
    /// How long requests collapsed behind one fetch wait for it before one
    /// of them fetches anew.
    pub collapse_wait: Duration,
}

impl CacheConfig {
    /// 1 GiB of objects on disk.
    pub const DEFAULT_MAX_SIZE: u64 = 1 << 30;
    /// 64 MiB: the largest response stored.
    pub const DEFAULT_MAX_OBJECT_SIZE: u64 = 64 << 20;
    /// 64 MiB memory tier.
    pub const DEFAULT_MEMORY_SIZE: u64 = 64 << 20;
    /// 1 MiB: objects up to this size may be kept in memory.
    pub const DEFAULT_MEMORY_OBJECT_MAX: u64 = 1 << 20;
    /// One day: the longest heuristic freshness.
    pub const DEFAULT_HEURISTIC_MAX: Duration = Duration::from_secs(24 * 3600);

    /// The defaults, caching in `dir`.
    pub fn new(dir: PathBuf) -> Self {
        CacheConfig {
            dir,
            max_size: Self::DEFAULT_MAX_SIZE,
            max_object_size: Self::DEFAULT_MAX_OBJECT_SIZE,
            memory_size: Self::DEFAULT_MEMORY_SIZE,
            memory_object_max: Self::DEFAULT_MEMORY_OBJECT_MAX,
            heuristic_max: Self::DEFAULT_HEURISTIC_MAX,
            collapse_wait: Duration::from_secs(60),
        }
    }

    /// The platform cache directory's `ferry` folder (`~/.cache/ferry` on
    /// Linux), used when no directory is configured.
    pub fn default_dir() -> PathBuf {
        dirs::cache_dir()
            .unwrap_or_else(|| PathBuf::from(".cache"))
            .join("ferry")
    }

    /// Sets the memory tier's size, keeping any one object to a quarter of it
    /// (so a small tier is not taken by one object).
    pub fn with_memory_size(mut self, bytes: u64) -> Self {
        self.memory_size = bytes;
        self.memory_object_max = self.memory_object_max.min(bytes / 4);
        self
    }
}
