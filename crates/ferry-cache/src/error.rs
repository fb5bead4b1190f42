//! The cache's one error type. In a file of its own, below everything that
//! returns it, so no module has to import it through the crate root.

use crate::policy::NotStored;

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
