//! Eviction: the background thread that keeps the cache directory within
//! `max_size`, least recently used first. Separate because it runs on its own
//! thread, woken by stores through `Inner::wake_evictor`.

use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc as std_mpsc};

use crate::inner::Inner;

impl Inner {
    fn evict(&self) {
        if !self.index.is_complete() {
            return;
        }
        // Evict a little below the bound so stores do not trigger it one by one.
        let target = self.cfg.max_size - self.cfg.max_size / 20;
        for (id, _) in self.index.victims(target) {
            self.remove(id);
            self.counters.evictions.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Starts the evictor thread; it ends when the cache is dropped.
pub(super) fn start_evictor(inner: &Arc<Inner>, rx: std_mpsc::Receiver<()>) -> std::io::Result<()> {
    let evict = Arc::downgrade(inner);
    std::thread::Builder::new()
        .name("ferry-cache-evict".into())
        .spawn(move || {
            while rx.recv().is_ok() {
                while rx.try_recv().is_ok() {}
                match evict.upgrade() {
                    Some(inner) => inner.evict(),
                    None => return,
                }
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::cache::test_support::{config, get, key_of, ok, store};
    use crate::cache::{Cache, Lookup};

    #[tokio::test]
    async fn eviction_keeps_within_the_bound_and_keeps_recent_objects() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.max_size = 200_000;
        cfg.memory_size = 10_000;
        let cache = Cache::open(cfg).unwrap();
        while !cache.stats().index_complete {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let body = vec![1u8; 20_000];
        for i in 0..30 {
            store(
                &cache,
                &get(&format!("http://a.test/{i}"), &[]),
                &ok(&[("cache-control", "max-age=60")]),
                &body,
            )
            .await;
        }
        for _ in 0..200 {
            if cache.stats().bytes <= 200_000 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let stats = cache.stats();
        assert!(stats.bytes <= 200_000, "{stats:?}");
        assert!(stats.evictions > 0);
        assert!(matches!(
            cache
                .lookup(
                    &get("http://a.test/29", &[]),
                    &key_of(&get("http://a.test/29", &[]))
                )
                .await,
            Lookup::Fresh(_)
        ));
        assert!(matches!(
            cache
                .lookup(
                    &get("http://a.test/0", &[]),
                    &key_of(&get("http://a.test/0", &[]))
                )
                .await,
            Lookup::Miss(_)
        ));
    }
}
