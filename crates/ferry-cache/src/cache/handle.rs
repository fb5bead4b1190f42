//! The [`Cache`] handle: opening a cache directory, the figures the cache
//! keeps about itself, and changes made by `ferry cache` meanwhile. Its own
//! file, below the operations (lookup, storing, invalidation, browsing), so
//! each of them can add its methods to the handle without importing the
//! `cache` module that re-exports them.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, mpsc as std_mpsc};
use std::time::Duration;

use super::{evict, scan};
use crate::config::CacheConfig;
use crate::entry::{MemoryTier, Weigher};
use crate::error::CacheError;
use crate::inner::{Counters, Inner};
use crate::key::CacheKey;
use crate::lock::{Collapse, Collapser};
use crate::store::disk;
use crate::store::index::Index;

/// The shared HTTP cache. Cheap to clone.
#[derive(Clone)]
pub struct Cache {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("dir", &self.inner.cfg.dir)
            .finish_non_exhaustive()
    }
}

/// Figures the cache keeps about itself.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct CacheStats {
    pub entries: usize,
    pub bytes: u64,
    pub max_bytes: u64,
    pub memory_entries: usize,
    pub memory_bytes: u64,
    pub stores: u64,
    pub store_failures: u64,
    pub evictions: u64,
    pub corrupt_removed: u64,
    pub fetches_collapsing: usize,
    pub index_complete: bool,
    /// Whether [`Cache::browse`] sees every object on disk: the start-up scan
    /// and the pass that reads the URLs of the objects it found are done.
    pub browse_complete: bool,
}

impl Cache {
    /// Opens (creating if needed) the cache directory. Returns at once: what is
    /// already on disk is indexed by a background scan. Fails if the directory
    /// cannot be created or written.
    pub fn open(cfg: CacheConfig) -> Result<Cache, CacheError> {
        let collapse_wait = cfg.collapse_wait;
        let dir_err = |source| CacheError::Dir {
            path: cfg.dir.clone(),
            source,
        };
        disk::claim(&cfg.dir).map_err(|e| match e {
            disk::ClaimError::Foreign { found } => CacheError::Foreign {
                path: cfg.dir.clone(),
                found,
            },
            disk::ClaimError::Io(e) => dir_err(e),
        })?;
        disk::private_dir(&cfg.dir.join(disk::OBJECTS)).map_err(dir_err)?;
        disk::clear_tmp(&cfg.dir).map_err(dir_err)?;
        let probe = cfg.dir.join(disk::TMP).join(disk::PROBE);
        disk::private_file(&probe)
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"ferry"))
            .map_err(dir_err)?;
        std::fs::remove_file(&probe).map_err(dir_err)?;
        let journal = cfg.dir.join(disk::JOURNAL);
        let journal_len = std::fs::metadata(&journal).map(|m| m.len()).unwrap_or(0);

        let estimated = (cfg.memory_size / 8192).clamp(64, 1 << 20) as usize;
        let (tx, rx) = std_mpsc::channel();
        let inner = Arc::new(Inner {
            memory: MemoryTier::with_weighter(estimated, cfg.memory_size.max(1), Weigher),
            cfg,
            index: Index::default(),
            collapser: Arc::new(Collapser::new(collapse_wait)),
            evictor: Mutex::new(tx),
            counters: Counters::default(),
            journal_offset: Mutex::new(journal_len),
        });
        scan::start_scan(&inner)?;
        evict::start_evictor(&inner, rx)?;
        Ok(Cache { inner })
    }

    pub fn dir(&self) -> &PathBuf {
        &self.inner.cfg.dir
    }

    /// How long a collapsed follower waits for its leader.
    pub fn collapse_wait(&self) -> Duration {
        self.inner.collapser.collapse_wait()
    }

    /// Joins or starts the single fetch of `key` (collapsed forwarding).
    pub fn collapse(&self, key: &CacheKey) -> Collapse {
        self.inner.collapser.join(key.id())
    }

    pub fn stats(&self) -> CacheStats {
        let i = &self.inner;
        CacheStats {
            entries: i.index.len(),
            bytes: i.index.total_bytes(),
            max_bytes: i.cfg.max_size,
            memory_entries: i.memory.len(),
            memory_bytes: i.memory.weight(),
            stores: i.counters.stores.load(Ordering::Relaxed),
            store_failures: i.counters.store_failures.load(Ordering::Relaxed),
            evictions: i.counters.evictions.load(Ordering::Relaxed),
            corrupt_removed: i.counters.corrupt.load(Ordering::Relaxed),
            fetches_collapsing: i.collapser.in_flight(),
            index_complete: i.index.is_complete(),
            browse_complete: i.index.is_described(),
        }
    }

    /// Applies changes made by `ferry cache purge/clear` while this process
    /// runs (they are appended to the journal file); call about once a second.
    pub fn sync_external_changes(&self) {
        let inner = &self.inner;
        let Ok(mut offset) = inner.journal_offset.lock() else {
            return;
        };
        let Ok(text) = crate::journal::read_from(&inner.cfg.dir, &mut offset) else {
            return;
        };
        for change in crate::journal::parse(&text) {
            match change {
                crate::journal::Change::Purge(id) => inner.forget(id),
                crate::journal::Change::Clear => {
                    inner.memory.clear();
                    inner.index.clear();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::test_support::config;

    #[tokio::test]
    async fn an_unwritable_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(Cache::open(config(&file.join("cache"))).is_err());
    }

    #[tokio::test]
    async fn a_directory_holding_other_files_is_refused_and_left_as_it_was() {
        // `--cache-dir ~` or `/` by mistake: start-up must not empty their
        // `tmp/` or change their permissions.
        use std::os::unix::fs::PermissionsExt;
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join("tmp")).unwrap();
        std::fs::write(home.path().join("tmp/draft.txt"), b"mine").unwrap();
        std::fs::create_dir(home.path().join("tmp/ab")).unwrap();
        std::fs::write(home.path().join("tmp/ab/notes"), b"mine too").unwrap();
        std::fs::write(home.path().join(".profile"), b"x").unwrap();
        std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o755)).unwrap();

        let Err(err) = Cache::open(config(home.path())) else {
            panic!("a foreign directory was accepted")
        };
        assert!(matches!(err, CacheError::Foreign { .. }), "{err}");
        assert!(err.to_string().contains("not a Ferry cache"), "{err}");
        assert_eq!(
            std::fs::read(home.path().join("tmp/draft.txt")).unwrap(),
            b"mine"
        );
        assert_eq!(
            std::fs::read(home.path().join("tmp/ab/notes")).unwrap(),
            b"mine too"
        );
        let mode = std::fs::metadata(home.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
        assert!(!home.path().join(disk::TAG).exists());
    }

    #[tokio::test]
    async fn start_up_removes_only_the_files_ferry_was_writing() {
        let dir = tempfile::tempdir().unwrap();
        let cache_dir = dir.path().join("cache");
        drop(Cache::open(config(&cache_dir)).unwrap());
        let tag = std::fs::read_to_string(cache_dir.join(disk::TAG)).unwrap();
        assert!(tag.starts_with("Signature: 8a477f597d28d172789f06886806bc55"));

        let shard = cache_dir.join("tmp/ab");
        std::fs::create_dir_all(&shard).unwrap();
        let leftover = shard.join(format!("ab{}.1f.tmp", "0".repeat(30)));
        std::fs::write(&leftover, b"half-written").unwrap();
        std::fs::write(shard.join("keep.txt"), b"someone's").unwrap();
        std::fs::write(cache_dir.join("tmp/keep-too"), b"someone's").unwrap();
        drop(Cache::open(config(&cache_dir)).unwrap());
        assert!(!leftover.exists(), "a crash's leftover is removed");
        assert!(shard.join("keep.txt").exists());
        assert!(cache_dir.join("tmp/keep-too").exists());
    }

    #[tokio::test]
    async fn a_cache_made_before_tags_is_still_accepted() {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["objects", "tmp"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        std::fs::write(dir.path().join("journal"), b"").unwrap();
        drop(Cache::open(config(dir.path())).unwrap());
        assert!(dir.path().join(disk::TAG).exists());
    }
}

#[cfg(test)]
mod scale_tests {
    use std::time::SystemTime;

    use bytes::Bytes;
    use http::Method;
    use http_body_util::BodyExt;

    use super::*;
    use crate::cache::test_support::key_of;
    use crate::cache::{BrowseOrder, BrowseQuery, Lookup};
    use crate::meta::{Kind, Meta, to_ms};
    use crate::policy;

    /// Opening a cache that holds 100,000 objects must not wait for them to be
    /// indexed. Prints the times (a measurement, not an assertion on them).
    #[tokio::test(flavor = "multi_thread")]
    async fn opening_a_cache_with_100k_objects_is_immediate() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(disk::TMP)).unwrap();
        let policy_req = http::Request::builder()
            .uri("http://bulk.test/0")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        let resp = http::Response::builder()
            .header("cache-control", "max-age=3600")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        let started = std::time::Instant::now();
        for i in 0..100_000u32 {
            let key =
                CacheKey::from_uri(&format!("http://bulk.test/{i}").parse().unwrap()).unwrap();
            let mut req = policy_req.clone();
            req.uri = key.as_str().parse().unwrap();
            let canonical = policy::canonical_request(&req, &key);
            let vary = policy::check_storable(
                &canonical,
                &Method::GET,
                &resp,
                SystemTime::now(),
                1 << 20,
                None,
            )
            .unwrap();
            let mut meta = Meta {
                kind: Kind::Object,
                key: key.as_str().into(),
                vary,
                generation: 0,
                status: 200,
                headers: Vec::new(),
                request_time_ms: to_ms(SystemTime::now()),
                response_time_ms: to_ms(SystemTime::now()),
            };
            meta.set_headers(&resp.headers);
            let mut t = disk::TempObject::create(dir.path(), key.id(), &meta).unwrap();
            t.write(format!("object {i}").as_bytes()).unwrap();
            t.commit(&disk::object_path(dir.path(), key.id())).unwrap();
        }
        eprintln!("wrote 100000 objects in {:?}", started.elapsed());

        let opened = std::time::Instant::now();
        let cache = Cache::open(CacheConfig::new(dir.path().to_path_buf())).unwrap();
        let open_time = opened.elapsed();
        let req = http::Request::builder()
            .uri("http://bulk.test/99999")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        let Lookup::Fresh(hit) = cache.lookup(&req, &key_of(&req)).await else {
            panic!("object not found right after opening")
        };
        let first_hit = opened.elapsed();
        let body = hit
            .into_response(&req)
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(body, Bytes::from_static(b"object 99999"));
        while !cache.stats().index_complete {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let indexed = opened.elapsed();
        assert_eq!(cache.stats().entries, 100_000);
        eprintln!(
            "100000 objects: open {open_time:?}, first hit after {first_hit:?}, index complete after {indexed:?}"
        );

        // The cache browser: listed once the scan's objects are described,
        // then answered from memory.
        while !cache.stats().browse_complete {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let described = opened.elapsed();
        let browsing = std::time::Instant::now();
        let query = BrowseQuery {
            text: "BULK.test/9999".into(),
            order: BrowseOrder::MostHit,
            limit: 5,
            ..BrowseQuery::default()
        };
        let found = cache.browse(&query);
        let one_browse = browsing.elapsed();
        assert_eq!(found.len(), 5);
        assert_eq!(
            (found[0].url.as_str(), found[0].hits),
            ("http://bulk.test/99999", 1)
        );
        let all = cache.browse(&BrowseQuery {
            limit: usize::MAX,
            ..BrowseQuery::default()
        });
        assert_eq!(all.len(), BrowseQuery::MAX_LIMIT);
        eprintln!(
            "100000 objects: described after {described:?}, a browse takes {one_browse:?}, the largest {:?}",
            browsing.elapsed() - one_browse
        );
    }
}
