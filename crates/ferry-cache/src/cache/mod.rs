//! The cache as the proxy sees it: look a request up, store a response while it
//! streams, refresh a stored response from a 304, invalidate, purge. Ties the
//! policy, the files, the memory tier, the index and eviction together.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc as std_mpsc};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Uri, request, response};
use http_cache_semantics::CachePolicy;

use crate::body::CacheBody;
use crate::key::{CacheKey, ObjectId};
use crate::lock::{Collapse, Collapser};
use crate::meta::{Kind, Meta, to_ms};
use crate::policy::{self, BodyPlan, NotStored, StaleRules, Verdict};
use crate::store::disk::{self, ReadError};
use crate::store::index::{Index, tick};
use crate::writer::{Plan, StoreWriter};
use crate::{CacheConfig, CacheError};

/// A stored object or vary marker, as held in memory.
#[derive(Debug)]
pub(crate) struct Entry {
    pub id: ObjectId,
    pub meta: Meta,
    pub body_len: u64,
    /// The body, for objects small enough for the memory tier.
    pub body: Option<Bytes>,
    /// Last-used clock shared with the index.
    pub clock: Option<Arc<AtomicU64>>,
    /// The stored response headers, parsed once.
    pub headers: HeaderMap,
    /// How long the response is fresh for (RFC 9111 §4.2.1), computed once.
    pub lifetime: Duration,
    /// The `Age` it arrived with and when it arrived, for its current age.
    pub age_header: Duration,
    pub response_time: SystemTime,
}

impl Entry {
    pub fn new(
        id: ObjectId,
        meta: Meta,
        body_len: u64,
        body: Option<Bytes>,
        clock: Option<Arc<AtomicU64>>,
        heuristic_max: Duration,
    ) -> Entry {
        let mut meta = meta;
        let headers = meta.header_map();
        let lifetime = meta
            .policy
            .as_ref()
            .map(|p| policy::freshness_lifetime(&meta, p, &headers, heuristic_max))
            .unwrap_or_default();
        // Kept once, as the parsed map; the meta copy is only for writing files.
        meta.headers = Vec::new();
        // The full policy is only needed for variants; for everything else it
        // can be rebuilt from the headers on the rare requests that need it.
        if meta.vary.is_empty() {
            meta.policy = None;
        }
        Entry {
            id,
            age_header: policy::age_header(&headers),
            response_time: meta.response_time(),
            meta,
            body_len,
            body,
            clock,
            headers,
            lifetime,
        }
    }

    fn stored(&self, now: SystemTime) -> policy::Stored<'_> {
        policy::Stored {
            status: self.meta.status(),
            headers: &self.headers,
            vary: &self.meta.vary,
            lifetime: self.lifetime,
            age: policy::current_age(self.age_header, self.response_time, now),
        }
    }

    /// Roughly the memory this entry holds (measured: about 4 KiB of
    /// structures and headers per small object, more for variants, which keep
    /// their full policy), so the memory tier's bound is a real bound.
    fn weight(&self) -> u64 {
        let header_bytes: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 48)
            .sum();
        let policy = if self.meta.policy.is_some() { 2560 } else { 0 };
        2048 + header_bytes as u64
            + policy
            + self.body.as_ref().map(|b| b.len() as u64).unwrap_or(0)
    }

    fn touch(&self) {
        if let Some(clock) = &self.clock {
            clock.store(tick(), Ordering::Relaxed);
        }
    }
}

#[derive(Clone)]
struct Weigher;

impl quick_cache::Weighter<ObjectId, Arc<Entry>> for Weigher {
    fn weight(&self, _key: &ObjectId, val: &Arc<Entry>) -> u64 {
        val.weight()
    }
}

type MemoryTier = quick_cache::sync::Cache<ObjectId, Arc<Entry>, Weigher>;

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub stores: AtomicU64,
    pub store_failures: AtomicU64,
    pub evictions: AtomicU64,
    pub corrupt: AtomicU64,
}

pub(crate) struct Inner {
    pub cfg: CacheConfig,
    pub index: Index,
    memory: MemoryTier,
    collapser: Arc<Collapser>,
    evictor: Mutex<std_mpsc::Sender<()>>,
    pub counters: Counters,
    journal_offset: Mutex<u64>,
}

impl Inner {
    pub fn remember(&self, entry: Entry) {
        if entry.meta.kind == Kind::VaryMarker
            || entry.weight() <= self.cfg.memory_object_max + 4096
        {
            self.memory.insert(entry.id, Arc::new(entry));
        }
    }

    pub fn wake_evictor(&self) {
        if self.index.total_bytes() > self.cfg.max_size {
            if let Ok(tx) = self.evictor.lock() {
                let _ = tx.send(());
            }
        }
    }

    fn forget(&self, id: ObjectId) {
        self.memory.remove(&id);
        self.index.remove(id);
    }

    fn remove(&self, id: ObjectId) -> bool {
        self.memory.remove(&id);
        self.index.remove(id);
        std::fs::remove_file(disk::object_path(&self.cfg.dir, id)).is_ok()
    }

    /// Finds an object or marker: memory first, then its file.
    fn load(self: &Arc<Self>, id: ObjectId) -> Option<Arc<Entry>> {
        if let Some(entry) = self.memory.get(&id) {
            entry.touch();
            return Some(entry);
        }
        if self.index.is_complete() && !self.index.contains(id) {
            return None;
        }
        let path = disk::object_path(&self.cfg.dir, id);
        match disk::read(&path, self.cfg.memory_object_max) {
            Ok(loaded) => {
                let clock = self.index.clock(id);
                let entry = Arc::new(Entry::new(
                    id,
                    loaded.meta,
                    loaded.body_len,
                    loaded.body,
                    clock,
                    self.cfg.heuristic_max,
                ));
                entry.touch();
                if entry.meta.kind == Kind::VaryMarker
                    || entry.weight() <= self.cfg.memory_object_max + 4096
                {
                    self.memory.insert(id, entry.clone());
                }
                Some(entry)
            }
            Err(ReadError::Missing) => {
                self.index.remove(id);
                None
            }
            Err(ReadError::Corrupt(why)) => {
                tracing::warn!(path = %path.display(), why, "damaged cache object removed");
                self.counters.corrupt.fetch_add(1, Ordering::Relaxed);
                self.remove(id);
                None
            }
            Err(ReadError::Io(e)) => {
                tracing::warn!(path = %path.display(), error = %e, "cache read failed");
                None
            }
        }
    }

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

/// The shared HTTP cache. Cheap to clone.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

/// The outcome of a lookup.
pub enum Lookup {
    /// Fresh: answer from the cache.
    Fresh(Hit),
    /// Stored but stale: revalidate (or serve it as `rules` allow).
    Stale(Stale),
    /// Nothing usable stored.
    Miss(Miss),
    /// `Cache-Control: only-if-cached` and nothing usable (RFC 9111 §5.2.1.7): 504.
    OnlyIfCachedMiss,
    /// Not a request the cache answers (method, or an uncacheable target).
    Bypass,
}

/// Why nothing was found (RFC 9211 `fwd` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissKind {
    /// Nothing stored for the URI.
    UriMiss,
    /// Stored responses, but none for this request's `Vary` header values.
    VaryMiss,
}

impl MissKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MissKind::UriMiss => "uri-miss",
            MissKind::VaryMiss => "vary-miss",
        }
    }
}

pub struct Miss {
    pub key: CacheKey,
    pub kind: MissKind,
}

/// A stored response that may answer the request.
pub struct Hit {
    entry: Arc<Entry>,
    inner: Arc<Inner>,
    key: CacheKey,
}

pub struct Stale {
    pub hit: Hit,
    pub rules: StaleRules,
}

impl Stale {
    /// Headers to add to the request sent upstream so the origin can answer 304.
    pub fn validators(&self) -> Vec<(HeaderName, HeaderValue)> {
        policy::validators(&self.hit.entry.headers)
    }
}

impl Hit {
    pub fn key(&self) -> &CacheKey {
        &self.key
    }

    pub fn status(&self) -> http::StatusCode {
        self.entry.meta.status()
    }

    /// Seconds the response has left before it is stale (negative: stale for that long).
    pub fn ttl(&self, now: SystemTime) -> i64 {
        let age = policy::current_age(self.entry.age_header, self.entry.response_time, now);
        self.entry.lifetime.as_secs() as i64 - age.as_secs() as i64
    }

    /// The response this stored object gives to `request` (its own conditional
    /// and range headers, and HEAD, are honoured).
    pub fn into_response(self, request: &request::Parts) -> http::Response<CacheBody> {
        let (parts, plan) = policy::hit_response(
            &self.entry.stored(SystemTime::now()),
            request,
            self.entry.body_len,
        );
        let len = self.entry.body_len;
        let body = match (plan, &self.entry.body) {
            (BodyPlan::None, _) => CacheBody::empty(),
            (_, _) if len == 0 => CacheBody::empty(),
            (BodyPlan::Full, Some(bytes)) => CacheBody::memory(bytes.clone()),
            (BodyPlan::Range(start, end), Some(bytes)) => {
                CacheBody::memory(bytes.slice(start as usize..=end as usize))
            }
            (BodyPlan::Full, None) => self.file_body(0, len - 1),
            (BodyPlan::Range(start, end), None) => self.file_body(start, end),
        };
        http::Response::from_parts(parts, body)
    }

    fn file_body(&self, start: u64, end: u64) -> CacheBody {
        let inner = self.inner.clone();
        let id = self.entry.id;
        CacheBody::file(
            disk::object_path(&self.inner.cfg.dir, id),
            self.entry.body_len,
            start,
            end,
            move || {
                inner.counters.corrupt.fetch_add(1, Ordering::Relaxed);
                inner.forget(id);
            },
        )
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
}

impl Cache {
    /// Opens (creating if needed) the cache directory. Returns at once: what is
    /// already on disk is indexed by a background scan. Fails if the directory
    /// cannot be created or written.
    pub fn open(cfg: CacheConfig) -> Result<Cache, CacheError> {
        let dir_err = |source| CacheError::Dir {
            path: cfg.dir.clone(),
            source,
        };
        std::fs::create_dir_all(cfg.dir.join(disk::OBJECTS)).map_err(dir_err)?;
        disk::clear_tmp(&cfg.dir).map_err(dir_err)?;
        let probe = cfg.dir.join(disk::TMP).join("probe");
        std::fs::write(&probe, b"ferry").map_err(dir_err)?;
        std::fs::remove_file(&probe).map_err(dir_err)?;
        let journal = cfg.dir.join(disk::JOURNAL);
        let journal_len = std::fs::metadata(&journal).map(|m| m.len()).unwrap_or(0);

        let estimated = (cfg.memory_size / 8192).clamp(64, 1 << 20) as usize;
        let (tx, rx) = std_mpsc::channel();
        let inner = Arc::new(Inner {
            memory: MemoryTier::with_weighter(estimated, cfg.memory_size.max(1), Weigher),
            cfg,
            index: Index::default(),
            collapser: Arc::new(Collapser::default()),
            evictor: Mutex::new(tx),
            counters: Counters::default(),
            journal_offset: Mutex::new(journal_len),
        });
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
            })?;
        let evict = Arc::downgrade(&inner);
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
        Ok(Cache { inner })
    }

    pub fn dir(&self) -> &PathBuf {
        &self.inner.cfg.dir
    }

    /// Looks up a stored response for `request`.
    pub async fn lookup(&self, request: &request::Parts) -> Lookup {
        if request.method != Method::GET && request.method != Method::HEAD {
            return Lookup::Bypass;
        }
        let Some(key) = CacheKey::from_uri(&request.uri) else {
            return Lookup::Bypass;
        };
        let has_directives = request.headers.contains_key(header::CACHE_CONTROL)
            || request.headers.contains_key(header::PRAGMA);
        let only_if_cached =
            has_directives && policy::directives(&request.headers).contains_key("only-if-cached");
        // Memory hits on objects that do not vary return at once; anything
        // else (variants, files) is looked up off the async threads.
        let found = match self.inner.memory.get(&key.id()) {
            Some(e) if e.meta.kind == Kind::Object => {
                e.touch();
                (Some(e), false)
            }
            // Once the index knows every file, a URL it lacks is a miss
            // without touching the disk.
            None if self.inner.index.is_complete() && !self.inner.index.contains(key.id()) => {
                (None, false)
            }
            _ => {
                let inner = self.inner.clone();
                let lookup_key = key.clone();
                let headers = policy::canonical_request(request, &key).headers;
                tokio::task::spawn_blocking(move || find(&inner, &lookup_key, &headers))
                    .await
                    .unwrap_or((None, false))
            }
        };
        let (entry, varies) = found;
        let miss = |kind| {
            if only_if_cached {
                Lookup::OnlyIfCachedMiss
            } else {
                Lookup::Miss(Miss {
                    key: key.clone(),
                    kind,
                })
            }
        };
        let Some(entry) = entry else {
            return miss(if varies {
                MissKind::VaryMiss
            } else {
                MissKind::UriMiss
            });
        };
        let hit = Hit {
            entry,
            inner: self.inner.clone(),
            key: key.clone(),
        };
        // The request as the policy sees it; the plain request does for the
        // common case of no directives and no Vary.
        let canonical;
        let evaluated = if has_directives || !hit.entry.meta.vary.is_empty() {
            canonical = policy::canonical_request(request, &key);
            &canonical
        } else {
            request
        };
        let now = SystemTime::now();
        let stored = hit.entry.stored(now);
        let full_policy = || match &hit.entry.meta.policy {
            Some(p) => Some(std::borrow::Cow::Borrowed(p)),
            None => Some(std::borrow::Cow::Owned(policy::rebuild_policy(
                &key,
                &stored,
                hit.entry.response_time,
            ))),
        };
        let verdict = policy::evaluate(&stored, full_policy, evaluated, now);
        match verdict {
            Verdict::Fresh => Lookup::Fresh(hit),
            Verdict::Stale(_) if only_if_cached => Lookup::OnlyIfCachedMiss,
            Verdict::Stale(rules) => Lookup::Stale(Stale { hit, rules }),
            Verdict::Mismatch => miss(MissKind::VaryMiss),
        }
    }

    /// Joins or starts the single fetch of `key` (collapsed forwarding).
    pub fn collapse(&self, key: &CacheKey) -> Collapse {
        self.inner.collapser.join(key.id())
    }

    /// Starts storing `response` (to `request`) if the rules allow it; feed the
    /// body to the returned writer as it streams.
    pub async fn begin_store(
        &self,
        request: &request::Parts,
        response: &response::Parts,
        request_time: SystemTime,
        response_time: SystemTime,
    ) -> Result<StoreWriter, NotStored> {
        let key = CacheKey::from_uri(&request.uri).ok_or(NotStored::Method)?;
        if let Some(reason) = policy::response_forbids_storing(&response.headers) {
            self.inner.collapser.mark_pass(key.id());
            return Err(reason);
        }
        let canonical = policy::canonical_request(request, &key);
        let checked = policy::check_storable(
            &canonical,
            &request.method,
            response,
            response_time,
            self.inner.cfg.max_object_size,
        );
        let (cache_policy, vary) = match checked {
            Ok(ok) => {
                self.inner.collapser.clear_pass(key.id());
                ok
            }
            Err(reason) => {
                if reason.is_about_the_response() {
                    self.inner.collapser.mark_pass(key.id());
                }
                return Err(reason);
            }
        };
        let primary = key.id();
        let (id, marker) = if vary.is_empty() {
            (primary, None)
        } else {
            // Reuse the current marker if it names the same headers, else a new one.
            let inner = self.inner.clone();
            let current = tokio::task::spawn_blocking(move || inner.load(primary))
                .await
                .ok()
                .flatten()
                .filter(|e| e.meta.kind == Kind::VaryMarker && e.meta.vary == vary);
            match current {
                Some(m) => (
                    key.variant_id(m.meta.generation, &vary, &canonical.headers),
                    None,
                ),
                None => {
                    let generation = new_generation();
                    let marker = Meta::vary_marker(key.as_str(), vary.clone(), generation);
                    (
                        key.variant_id(generation, &vary, &canonical.headers),
                        Some((primary, marker)),
                    )
                }
            }
        };
        let mut meta = Meta {
            kind: Kind::Object,
            key: key.as_str().to_string(),
            vary,
            generation: 0,
            status: response.status.as_u16(),
            headers: Vec::new(),
            policy: Some(cache_policy),
            request_time_ms: to_ms(request_time),
            response_time_ms: to_ms(response_time),
        };
        meta.set_headers(&response.headers);
        let expected_len = response
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        Ok(StoreWriter::start(
            self.inner.clone(),
            Plan {
                id,
                meta,
                marker,
                expected_len,
            },
        ))
    }

    /// Updates a stale stored response from the 304 that revalidated it
    /// (RFC 9111 §4.3.4) and returns it, fresh again.
    pub async fn refresh(
        &self,
        stale: Hit,
        request: &request::Parts,
        not_modified: &response::Parts,
        response_time: SystemTime,
    ) -> Result<Hit, CacheError> {
        let old = stale.entry.clone();
        let stored_headers = old.headers.clone();
        if !policy::not_modified_matches(&stored_headers, &not_modified.headers) {
            return Err(CacheError::Mismatch);
        }
        let merged = policy::merge_not_modified(&stored_headers, &not_modified.headers);
        let mut parts = http::Response::new(()).into_parts().0;
        parts.status = old.meta.status();
        parts.headers = merged;
        let canonical = policy::canonical_request(request, &stale.key);
        let new_policy = CachePolicy::new_options(
            &policy::stored_request(&canonical, &old.meta.vary),
            &parts,
            response_time,
            policy::options(),
        );
        let mut meta = old.meta.clone();
        meta.set_headers(&parts.headers);
        meta.policy = Some(new_policy);
        meta.response_time_ms = to_ms(response_time);
        meta.request_time_ms = to_ms(response_time);
        let inner = self.inner.clone();
        let id = old.id;
        let rewritten = {
            let meta = meta.clone();
            let old = old.clone();
            let inner = inner.clone();
            tokio::task::spawn_blocking(move || rewrite(&inner, &old, &meta))
                .await
                .map_err(|e| CacheError::Io(std::io::Error::other(e.to_string())))?
        };
        let clock = match rewritten {
            Ok(clock) => Some(clock),
            Err(e) if old.body.is_some() => {
                // The body is in memory; keep serving it even if the disk copy
                // could not be rewritten.
                tracing::warn!(error = %e, "could not rewrite refreshed cache object");
                old.clock.clone()
            }
            Err(e) => return Err(e),
        };
        let entry = Arc::new(Entry::new(
            id,
            meta,
            old.body_len,
            old.body.clone(),
            clock,
            inner.cfg.heuristic_max,
        ));
        if entry.meta.kind == Kind::VaryMarker
            || entry.weight() <= inner.cfg.memory_object_max + 4096
        {
            inner.memory.insert(id, entry.clone());
        } else {
            inner.memory.remove(&id);
        }
        Ok(Hit {
            entry,
            inner,
            key: stale.key,
        })
    }

    /// After a non-error response to an unsafe method, forgets what is stored
    /// for the target URI and for same-origin `Location` / `Content-Location`
    /// (RFC 9111 §4.4).
    pub async fn invalidate(&self, request: &request::Parts, response: &response::Parts) {
        if request.method.is_safe() || !(200..400).contains(&response.status.as_u16()) {
            return;
        }
        let Some(target) = CacheKey::from_uri(&request.uri) else {
            return;
        };
        let mut ids = vec![target.id()];
        for name in [header::LOCATION, header::CONTENT_LOCATION] {
            let Some(value) = response.headers.get(&name).and_then(|v| v.to_str().ok()) else {
                continue;
            };
            if let Some(uri) = resolve_same_origin(&request.uri, value) {
                if let Some(k) = CacheKey::from_uri(&uri) {
                    ids.push(k.id());
                }
            }
        }
        let inner = self.inner.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for id in ids {
                inner.remove(id);
            }
        })
        .await;
    }

    /// Removes what is stored for `uri`; `true` if there was something.
    pub async fn purge(&self, uri: &Uri) -> bool {
        let Some(key) = CacheKey::from_uri(uri) else {
            return false;
        };
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.remove(key.id()))
            .await
            .unwrap_or(false)
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

/// Follows a marker to the variant the request selects.
/// Returns (entry, whether the URI has variants).
fn find(inner: &Arc<Inner>, key: &CacheKey, request: &HeaderMap) -> (Option<Arc<Entry>>, bool) {
    let Some(entry) = inner.load(key.id()) else {
        return (None, false);
    };
    if entry.meta.kind == Kind::Object {
        return (Some(entry), false);
    }
    let variant = key.variant_id(entry.meta.generation, &entry.meta.vary, request);
    (
        inner.load(variant).filter(|e| e.meta.kind == Kind::Object),
        true,
    )
}

/// Rewrites an object file with new meta and the same body.
fn rewrite(inner: &Arc<Inner>, old: &Entry, meta: &Meta) -> Result<Arc<AtomicU64>, CacheError> {
    let dir = &inner.cfg.dir;
    let mut temp = disk::TempObject::create(dir, old.id, meta)?;
    match &old.body {
        Some(bytes) => temp.write(bytes)?,
        None => {
            let mut file = std::fs::File::open(disk::object_path(dir, old.id))?;
            let head = disk::read_head(&mut file).map_err(|e| match e {
                ReadError::Io(e) => CacheError::Io(e),
                ReadError::Missing => CacheError::Io(std::io::ErrorKind::NotFound.into()),
                ReadError::Corrupt(why) => CacheError::Corrupt(why.into()),
            })?;
            if head.body_len != old.body_len {
                return Err(CacheError::Corrupt("object changed during refresh".into()));
            }
            use std::io::{Seek, SeekFrom};
            file.seek(SeekFrom::Start(head.body_start))?;
            temp.copy_from(&mut file, head.body_len)?;
        }
    }
    let size = temp.commit(&disk::object_path(dir, old.id))?;
    Ok(inner.index.insert(old.id, size, tick()))
}

/// `Location`/`Content-Location` resolved against the request URI, if it
/// names the same origin (scheme, host and port).
fn resolve_same_origin(base: &Uri, value: &str) -> Option<Uri> {
    if value.starts_with('/') && !value.starts_with("//") {
        let mut parts = base.clone().into_parts();
        parts.path_and_query = Some(value.parse().ok()?);
        return Uri::from_parts(parts).ok();
    }
    let uri: Uri = value.parse().ok()?;
    let same = uri.scheme() == base.scheme()
        && uri.host().map(str::to_ascii_lowercase) == base.host().map(str::to_ascii_lowercase)
        && uri.port_u16() == base.port_u16();
    same.then_some(uri)
}

fn new_generation() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// How long followers wait for a collapsed fetch before fetching themselves.
pub const COLLAPSE_WAIT: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn config(dir: &std::path::Path) -> CacheConfig {
        CacheConfig::new(dir.to_path_buf())
    }

    fn get(uri: &str, headers: &[(&str, &str)]) -> request::Parts {
        let mut b = http::Request::builder().uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn ok(headers: &[(&str, &str)]) -> response::Parts {
        let mut b = http::Response::builder().status(200);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    async fn store(cache: &Cache, req: &request::Parts, resp: &response::Parts, body: &[u8]) {
        let now = SystemTime::now();
        let mut w = cache.begin_store(req, resp, now, now).await.unwrap();
        for chunk in body.chunks(1000) {
            w.push(&Bytes::copy_from_slice(chunk));
        }
        w.finish().await.unwrap();
    }

    async fn body_of(hit: Hit, req: &request::Parts) -> (u16, Bytes) {
        let resp = hit.into_response(req);
        let status = resp.status().as_u16();
        (status, resp.into_body().collect().await.unwrap().to_bytes())
    }

    #[tokio::test]
    async fn store_then_hit_from_memory_and_from_disk_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let req = get("http://a.test/x", &[]);
        let big: Vec<u8> = (0..3_000_000u32).map(|i| i as u8).collect();
        {
            let cache = Cache::open(config(dir.path())).unwrap();
            assert!(matches!(
                cache.lookup(&req).await,
                Lookup::Miss(Miss {
                    kind: MissKind::UriMiss,
                    ..
                })
            ));
            store(
                &cache,
                &req,
                &ok(&[("cache-control", "max-age=60")]),
                b"hello",
            )
            .await;
            let Lookup::Fresh(hit) = cache.lookup(&req).await else {
                panic!("hit expected")
            };
            assert_eq!(
                body_of(hit, &req).await,
                (200, Bytes::from_static(b"hello"))
            );
            let big_req = get("http://a.test/big", &[]);
            store(
                &cache,
                &big_req,
                &ok(&[("cache-control", "max-age=60")]),
                &big,
            )
            .await;
        }
        let cache = Cache::open(config(dir.path())).unwrap();
        let Lookup::Fresh(hit) = cache.lookup(&req).await else {
            panic!("kept across reopen")
        };
        assert_eq!(body_of(hit, &req).await.1, Bytes::from_static(b"hello"));
        let big_req = get("http://a.test/big", &[]);
        let Lookup::Fresh(hit) = cache.lookup(&big_req).await else {
            panic!("big kept")
        };
        assert_eq!(body_of(hit, &big_req).await.1.as_ref(), &big[..]);
    }

    #[tokio::test]
    async fn an_unfinished_or_short_store_is_never_visible() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(config(dir.path())).unwrap();
        let req = get("http://a.test/x", &[]);
        let now = SystemTime::now();
        let mut w = cache
            .begin_store(&req, &ok(&[("cache-control", "max-age=60")]), now, now)
            .await
            .unwrap();
        w.push(&Bytes::from_static(b"part"));
        drop(w);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(matches!(cache.lookup(&req).await, Lookup::Miss(_)));
        let mut w = cache
            .begin_store(
                &req,
                &ok(&[("cache-control", "max-age=60"), ("content-length", "10")]),
                now,
                now,
            )
            .await
            .unwrap();
        w.push(&Bytes::from_static(b"short"));
        assert!(w.finish().await.is_err());
        assert!(matches!(cache.lookup(&req).await, Lookup::Miss(_)));
        let leftovers = std::fs::read_dir(dir.path().join(disk::TMP))
            .unwrap()
            .flatten()
            .flat_map(|shard| std::fs::read_dir(shard.path()).unwrap().flatten())
            .count();
        assert_eq!(leftovers, 0);
    }

    #[tokio::test]
    async fn variants_and_invalidation() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(config(dir.path())).unwrap();
        let en = get("http://a.test/v", &[("accept-language", "en")]);
        let fr = get("http://a.test/v", &[("accept-language", "fr")]);
        let vary = ok(&[("cache-control", "max-age=60"), ("vary", "Accept-Language")]);
        store(&cache, &en, &vary, b"hello").await;
        assert!(matches!(
            cache.lookup(&fr).await,
            Lookup::Miss(Miss {
                kind: MissKind::VaryMiss,
                ..
            })
        ));
        store(&cache, &fr, &vary, b"bonjour").await;
        let Lookup::Fresh(hit) = cache.lookup(&en).await else {
            panic!()
        };
        assert_eq!(body_of(hit, &en).await.1, Bytes::from_static(b"hello"));
        let Lookup::Fresh(hit) = cache.lookup(&fr).await else {
            panic!()
        };
        assert_eq!(body_of(hit, &fr).await.1, Bytes::from_static(b"bonjour"));

        let mut post = get("http://a.test/v", &[]);
        post.method = Method::POST;
        cache.invalidate(&post, &ok(&[])).await;
        assert!(matches!(cache.lookup(&en).await, Lookup::Miss(_)));
        // A new marker generation: the old variants are unreachable.
        store(&cache, &en, &vary, b"hello again").await;
        assert!(matches!(cache.lookup(&fr).await, Lookup::Miss(_)));
    }

    #[tokio::test]
    async fn a_304_refreshes_headers_and_keeps_the_body() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(config(dir.path())).unwrap();
        let req = get("http://a.test/r", &[]);
        store(
            &cache,
            &req,
            &ok(&[
                ("cache-control", "max-age=0"),
                ("etag", "\"1\""),
                ("x-v", "old"),
            ]),
            b"body",
        )
        .await;
        let Lookup::Stale(stale) = cache.lookup(&req).await else {
            panic!("stale")
        };
        assert_eq!(stale.validators()[0].1, "\"1\"");
        let mut nm = ok(&[
            ("cache-control", "max-age=60"),
            ("etag", "\"1\""),
            ("x-v", "new"),
        ]);
        nm.status = http::StatusCode::NOT_MODIFIED;
        let hit = cache
            .refresh(stale.hit, &req, &nm, SystemTime::now())
            .await
            .unwrap();
        let resp = hit.into_response(&req);
        assert_eq!(resp.headers()["x-v"], "new");
        let Lookup::Fresh(hit) = cache.lookup(&req).await else {
            panic!("fresh after refresh")
        };
        assert_eq!(body_of(hit, &req).await.1, Bytes::from_static(b"body"));
    }

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
            cache.lookup(&get("http://a.test/29", &[])).await,
            Lookup::Fresh(_)
        ));
        assert!(matches!(
            cache.lookup(&get("http://a.test/0", &[])).await,
            Lookup::Miss(_)
        ));
    }

    #[tokio::test]
    async fn an_unwritable_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(Cache::open(config(&file.join("cache"))).is_err());
    }

    #[test]
    fn same_origin_resolution() {
        let base: Uri = "http://a.test/x/y".parse().unwrap();
        assert_eq!(
            resolve_same_origin(&base, "/z").unwrap().to_string(),
            "http://a.test/z"
        );
        assert!(resolve_same_origin(&base, "http://a.test/q").is_some());
        assert!(resolve_same_origin(&base, "http://b.test/q").is_none());
        assert!(resolve_same_origin(&base, "https://a.test/q").is_none());
        assert!(resolve_same_origin(&base, "//b.test/q").is_none());
    }
}

#[cfg(test)]
mod scale_tests {
    use super::*;
    use crate::meta::Meta;
    use http_body_util::BodyExt;

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
            let (p, vary) =
                policy::check_storable(&canonical, &Method::GET, &resp, SystemTime::now(), 1 << 20)
                    .unwrap();
            let mut meta = Meta {
                kind: Kind::Object,
                key: key.as_str().into(),
                vary,
                generation: 0,
                status: 200,
                headers: Vec::new(),
                policy: Some(p),
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
        let Lookup::Fresh(hit) = cache.lookup(&req).await else {
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
    }
}
