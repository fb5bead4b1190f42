//! The HTTP cache: RFC 9111 policy (`policy`), keys (`key`), the object file
//! format (`meta`), storage on disk with a memory tier and eviction (`store`),
//! the tee that stores a response while it streams (`writer`), bodies read
//! back from the cache (`body`), collapsed forwarding (`lock`), and the
//! `ferry cache` command (`cli`). No sockets live here.

pub mod cli;
mod config;
pub mod key;
pub mod meta;
pub mod policy;

pub use config::CacheConfig;
pub use key::{CacheKey, ObjectId};
pub use policy::{NotStored, StaleRules};

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
