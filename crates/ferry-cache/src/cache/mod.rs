//! The cache as the proxy sees it: the [`Cache`] handle (`handle`: opening a
//! cache directory, its figures, changes made by `ferry cache` meanwhile) and
//! one file per operation on it, each adding its methods to the handle. The
//! shared state is `crate::inner`. This file only declares the files and
//! re-exports their public items, so none of them imports it.

mod browse;
mod evict;
mod handle;
mod invalidate;
mod lookup;
mod scan;
mod storing;
#[cfg(test)]
mod test_support;

pub use browse::{BrowseOrder, BrowseQuery, ObjectDetail, ObjectSummary};
pub use handle::{Cache, CacheStats};
pub use lookup::{Hit, Lookup, MissKind, Stale};
