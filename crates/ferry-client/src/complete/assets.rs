//! One page's assets: each URL fetched at most once, through the proxy (the
//! same [`crate::fetch`] path as pages, so a second save is served from
//! Ferry's cache), at most `--jobs` asset fetches at once across the run,
//! each cut off past `--max-asset-size` or after the fetch timeout, and all
//! together bounded by the page's total cap (`--max-page-size`): the bytes
//! held in memory and the bytes written into the page are both counted
//! against it. An asset's `data:` URL is made once, however many documents
//! (the page, its frames) use it. Failures are remembered by URL for the
//! report.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use bytes::{Bytes, BytesMut};
use http::StatusCode;
use tokio::sync::{OnceCell, Semaphore};
use url::Url;

use super::data_url::data_url;
use crate::dom::TooBig;
use crate::error::ClientError;
use crate::fetch::{self, FetchOptions};
use crate::proxy_env::ProxySelector;
use crate::{charset, media};

/// How many distinct asset URLs one page may fetch.
pub const MAX_ASSETS_PER_PAGE: usize = 20_000;

/// What assets are fetched with: the run's proxy choice and fetch options,
/// and the slots every page's asset fetches share (`--jobs` of them). Given
/// by the job that completes the page, so completing needs nothing else from it.
#[derive(Debug, Clone)]
pub struct AssetFetch {
    pub selector: ProxySelector,
    pub fetch: FetchOptions,
    pub slots: Arc<Semaphore>,
}

/// Why an asset was not inlined.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AssetError {
    #[error("{0}")]
    Fetch(String),
    #[error("answered {0}")]
    Status(StatusCode),
    #[error("larger than --max-asset-size ({0} bytes)")]
    TooLarge(u64),
    #[error("the page's total size cap (--max-page-size, {0} bytes) is used up")]
    PageCap(u64),
    #[error("more than {MAX_ASSETS_PER_PAGE} assets on one page")]
    TooMany,
    #[error("took longer than {0} s")]
    Timeout(u64),
    #[error("a stylesheet that imports itself")]
    Loop,
    #[error("nested too deep")]
    TooDeep,
    #[error("not an HTML page (frames are inlined only when they are)")]
    NotHtml,
    /// A frame whose parsed HTML does not fit in what is left of the page's budget.
    #[error("{0}")]
    TooBig(#[from] TooBig),
}

impl From<ClientError> for AssetError {
    fn from(e: ClientError) -> Self {
        AssetError::Fetch(e.to_string())
    }
}

/// A fetched asset.
#[derive(Debug)]
pub struct Body {
    pub bytes: Bytes,
    /// The URL that answered (after redirects).
    pub url: Url,
    pub content_type: Option<String>,
    /// The asset as a `data:` URL, made once for all documents that use it.
    encoded: OnceLock<Arc<str>>,
}

impl Body {
    /// The `type/subtype` to label the asset with: its `Content-Type`, else a
    /// guess from the URL's path.
    pub fn essence(&self) -> String {
        self.content_type
            .as_deref()
            .and_then(media::essence)
            .filter(|e| e != "application/octet-stream")
            .or_else(|| {
                mime_guess::from_path(self.url.path())
                    .first()
                    .map(|m| m.essence_str().to_string())
            })
            .unwrap_or_else(|| "application/octet-stream".to_string())
    }

    /// The asset as a `data:` URL (its charset kept for text).
    pub fn data_url(&self) -> Arc<str> {
        self.encoded
            .get_or_init(|| {
                let charset = self
                    .content_type
                    .as_deref()
                    .and_then(charset::charset_param)
                    .map(|e| format!(";charset={}", e.name()))
                    .unwrap_or_default();
                Arc::from(data_url(
                    &format!("{}{charset}", self.essence()),
                    &self.bytes,
                ))
            })
            .clone()
    }
}

/// One URL's fetch, run once and shared by everyone who asks for it.
type FetchOnce = Arc<OnceCell<Result<Arc<Body>, AssetError>>>;

/// The fetch state of one page (and the frames inlined into it).
pub struct Assets {
    fetch: AssetFetch,
    max_asset: u64,
    max_page: u64,
    memo: Mutex<HashMap<Url, FetchOnce>>,
    held: AtomicU64,
    written: AtomicU64,
    inlined: Mutex<HashSet<String>>,
    failed: Mutex<BTreeMap<String, String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Assets {
    pub fn new(fetch: AssetFetch, max_asset: u64, max_page: u64) -> Assets {
        Assets {
            fetch,
            max_asset,
            max_page,
            memo: Mutex::new(HashMap::new()),
            held: AtomicU64::new(0),
            written: AtomicU64::new(0),
            inlined: Mutex::new(HashSet::new()),
            failed: Mutex::new(BTreeMap::new()),
        }
    }

    /// The asset at `url`, fetched once however often it is asked for.
    pub async fn get(&self, url: &Url) -> Result<Arc<Body>, AssetError> {
        let slot = {
            let mut memo = lock(&self.memo);
            match memo.get(url) {
                Some(slot) => slot.clone(),
                None if memo.len() >= MAX_ASSETS_PER_PAGE => return Err(AssetError::TooMany),
                None => memo.entry(url.clone()).or_default().clone(),
            }
        };
        slot.get_or_init(|| self.download(url)).await.clone()
    }

    async fn download(&self, url: &Url) -> Result<Arc<Body>, AssetError> {
        let limit = self.fetch.fetch.idle_timeout;
        match tokio::time::timeout(limit, self.download_within(url)).await {
            Ok(result) => result.map(Arc::new),
            Err(_) => Err(AssetError::Timeout(limit.as_secs())),
        }
    }

    async fn download_within(&self, url: &Url) -> Result<Body, AssetError> {
        // The semaphore is never closed; without a permit we still go on.
        let _permit = self.fetch.slots.acquire().await;
        // Once the page's cap is used up, nothing more is fetched for it.
        if self.held.load(Ordering::Relaxed) >= self.max_page {
            return Err(AssetError::PageCap(self.max_page));
        }
        let mut fetched = fetch::fetch(url, &self.fetch.selector, &self.fetch.fetch).await?;
        if !fetched.status.is_success() {
            return Err(AssetError::Status(fetched.status));
        }
        if fetched.content_length().is_some_and(|n| n > self.max_asset) {
            return Err(AssetError::TooLarge(self.max_asset));
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = fetched.next_chunk().await? {
            if (body.len() + chunk.len()) as u64 > self.max_asset {
                return Err(AssetError::TooLarge(self.max_asset));
            }
            let n = chunk.len() as u64;
            if self.held.fetch_add(n, Ordering::Relaxed) + n > self.max_page {
                return Err(AssetError::PageCap(self.max_page));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Body {
            bytes: body.freeze(),
            url: fetched.url.clone(),
            content_type: fetched.content_type().map(str::to_string),
            encoded: OnceLock::new(),
        })
    }

    /// Takes `n` bytes of the page's output budget; false once it is used up.
    pub fn charge(&self, n: usize) -> bool {
        let n = n as u64;
        let before = self.written.fetch_add(n, Ordering::Relaxed);
        if before + n > self.max_page {
            self.written.fetch_sub(n, Ordering::Relaxed);
            false
        } else {
            true
        }
    }

    pub fn page_cap(&self) -> u64 {
        self.max_page
    }

    pub fn succeeded(&self, url: &Url) {
        lock(&self.inlined).insert(url.to_string());
    }

    pub fn failed(&self, url: &Url, error: &AssetError) {
        lock(&self.failed)
            .entry(url.to_string())
            .or_insert_with(|| error.to_string());
    }

    /// (distinct URLs inlined, failures by URL)
    pub fn summary(&self) -> (usize, Vec<(String, String)>) {
        let failed = lock(&self.failed);
        let inlined = lock(&self.inlined)
            .iter()
            .filter(|u| !failed.contains_key(*u))
            .count();
        (
            inlined,
            failed.iter().map(|(u, r)| (u.clone(), r.clone())).collect(),
        )
    }
}
