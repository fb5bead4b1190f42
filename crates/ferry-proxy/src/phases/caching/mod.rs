//! The cache's part in a request: GET and HEAD answered through the cache
//! (`answer`: hits, revalidation, collapsed misses), a range of an object
//! not stored (`ranges`: one fetch of the whole), the requests it does not
//! answer (`bypass`: invalidation, POST responses), storing while relaying
//! (`store_sink`), and what every phase takes and gives (`served`).

pub mod answer;
pub mod bypass;
pub mod ranges;
pub mod served;
pub mod store_sink;
#[cfg(test)]
mod tests;

pub use answer::{answer, purge};
pub use bypass::forward_uncached;
pub use served::CacheRequest;
