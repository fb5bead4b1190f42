//! The HTTP cache. No sockets live here. Modules, lowest layer first:
//! - `key`, `meta`, `store` (object files on disk, the index), `lock`
//!   (collapsed forwarding), `journal` (changes made by `ferry cache`);
//! - `policy` (RFC 9111: storability, freshness, revalidation) and
//!   `conditional` (RFC 9110: conditional and range answers from a stored object);
//! - `entry` and `inner` (objects in memory, the memory tier, loading and removal);
//! - `writer` (the tee that stores a response while it streams), `body` (bodies
//!   read back from the cache);
//! - `cache` (what the proxy calls: lookup, store and refresh, invalidation,
//!   eviction; the cache browser for the dashboard), `config` (settings and
//!   their defaults), `manage` (`ferry cache`).

mod body;
mod cache;
pub mod conditional;
mod config;
mod entry;
mod inner;
mod journal;
pub mod key;
mod lock;
pub mod manage;
pub mod meta;
pub mod policy;
mod store;
mod writer;

#[cfg(test)]
mod proptests;

pub use body::CacheBody;
pub use cache::{
    BrowseOrder, BrowseQuery, Cache, CacheStats, Hit, Lookup, MissKind, ObjectDetail,
    ObjectSummary, Stale,
};
pub use config::CacheConfig;
pub use key::{CacheKey, ObjectId};
pub use lock::{Collapse, Follower, LeaderGuard};
pub use policy::{NotStored, StaleRules};
pub use writer::StoreWriter;

/// Errors of the cache. Most are handled inside (a bad object is a miss); the
/// ones that surface mean the cache directory itself is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    #[error("cache directory {path}: {source}")]
    Dir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cache directory {path} is not a Ferry cache: it holds {found:?}, which Ferry did \
         not write; give an empty or new directory, or one Ferry made (it has a CACHEDIR.TAG naming Ferry)"
    )]
    Foreign {
        path: std::path::PathBuf,
        found: String,
    },
    #[error("cache i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt cache object: {0}")]
    Corrupt(String),
    #[error("the updated response may not be stored ({})", .0.as_str())]
    NotStorable(NotStored),
}
