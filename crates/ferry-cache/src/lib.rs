//! The HTTP cache. No sockets live here. Modules, lowest layer first:
//! - `key`, `config` (settings and their defaults);
//! - `policy` (RFC 9111: storability, freshness, revalidation) and
//!   `conditional` (RFC 9110: conditional and range answers from a stored object);
//! - `error` (the crate's one error type), `meta`, `store` (object files on
//!   disk, the index), `lock` (collapsed forwarding), `journal` (changes made
//!   by `ferry cache`);
//! - `entry` and `inner` (objects in memory, the memory tier, loading and removal);
//! - `writer` (the tee that stores a response while it streams), `body` (bodies
//!   read back from the cache);
//! - `cache` (what the proxy calls: lookup, store and refresh, invalidation,
//!   eviction; the cache browser for the dashboard), `manage` (`ferry cache`).
//!
//! This file only declares the modules and re-exports the public API; no
//! module imports it.

mod body;
mod cache;
pub mod conditional;
mod config;
mod entry;
mod error;
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
pub use error::CacheError;
pub use key::{CacheKey, ObjectId};
pub use lock::{Collapse, Follower, LeaderGuard};
pub use policy::{FreshnessRule, NotStored, StaleRules};
pub use writer::StoreWriter;
