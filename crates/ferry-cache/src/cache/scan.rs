//! The start-up scan, on a thread of its own: indexes the objects already in
//! the cache directory (names and sizes only, so opening a cache need not
//! wait for it), then describes them for the cache browser. Started by
//! `handle` when a cache opens, and kept out of `browse` (which only reads
//! what this writes) so that `handle` and `browse` do not import each other.

use std::sync::{Arc, Weak};

use crate::inner::Inner;
use crate::store::disk::{self, ReadError};
use crate::store::index::{About, SHARDS};

/// Starts the scan thread; it ends when the scan is done or the cache is
/// dropped.
pub(super) fn start_scan(inner: &Arc<Inner>) -> std::io::Result<()> {
    let scan = inner.clone();
    std::thread::Builder::new()
        .name("ferry-cache-scan".into())
        .spawn(move || {
            let started = std::time::Instant::now();
            let result = disk::scan(&scan.cfg.dir, |id, size, modified| {
                let ms = modified
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or(0);
                scan.index.insert_scanned(id, size, ms);
            });
            if let Err(e) = result {
                tracing::warn!(error = %e, "cache scan incomplete");
            }
            scan.index.mark_scanned();
            tracing::info!(
                entries = scan.index.len(),
                bytes = scan.index.total_bytes(),
                ms = started.elapsed().as_millis() as u64,
                "cache index ready"
            );
            scan.wake_evictor();
            // Then, still in the background, what the cache browser needs
            // to know about the objects found (it stops if the cache is
            // dropped).
            let weak = Arc::downgrade(&scan);
            drop(scan);
            describe_scanned(&weak);
        })?;
    Ok(())
}

/// Describes, for the cache browser, the objects the start-up scan found
/// (it learns only their names and sizes): reads each one's head once, on
/// the scan thread after the scan. Files that cannot be read are left as
/// they are (a lookup that reads one removes it if damaged) and stay
/// unlisted. Stops early if the cache is dropped.
fn describe_scanned(inner: &Weak<Inner>) {
    for shard in 0..SHARDS {
        let Some(inner) = inner.upgrade() else {
            return;
        };
        for id in inner.index.undescribed(shard) {
            let path = disk::object_path(&inner.cfg.dir, id);
            let head = std::fs::File::open(&path)
                .map_err(ReadError::from)
                .and_then(|mut file| disk::read_head(&mut file));
            match head {
                Ok(head) => inner.index.describe(id, About::of(&head.meta)),
                Err(e) => {
                    tracing::debug!(path = %path.display(), error = ?e, "cache object not described")
                }
            }
        }
    }
    if let Some(inner) = inner.upgrade() {
        inner.index.mark_described();
    }
}
