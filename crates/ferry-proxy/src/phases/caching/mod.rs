//! The cache's part in a request: GET and HEAD answered through the cache
//! (`answer`: hits, revalidation, collapsed misses, store while relaying),
//! the requests it does not answer (`bypass`: invalidation, POST responses),
//! and the tee into the store (`store_sink`).

pub mod answer;
pub mod bypass;
pub mod store_sink;
#[cfg(test)]
mod tests;

pub use answer::{CacheRequest, answer, purge};
pub use bypass::forward_uncached;
