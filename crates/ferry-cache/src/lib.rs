//! The HTTP cache: RFC 9111 policy (`policy`), keys (`key`), the object file
//! format (`meta`), storage on disk with a memory tier and eviction (`store`),
//! the tee that stores a response while it streams (`writer`), bodies read
//! back from the cache (`body`), collapsed forwarding (`lock`), and the
//! `ferry cache` command (`cli`). No sockets live here.

mod body;
mod cache;
pub mod cli;
mod conditional;
mod config;
mod entry;
mod inner;
mod journal;
pub mod key;
mod lock;
pub mod meta;
pub mod policy;
mod store;
mod writer;

pub use body::CacheBody;
pub use cache::{COLLAPSE_WAIT, Cache, CacheStats, Hit, Lookup, Miss, MissKind, Stale};
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
    #[error("cache i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt cache object: {0}")]
    Corrupt(String),
    #[error("the 304 does not describe the stored response")]
    Mismatch,
}
