//! The page-saving client: `ferry get URL...` and the interactive `ferry client`.
//!
//! Every URL goes through the proxy (`--proxy`, else the environment as curl
//! reads it, else `http://127.0.0.1:3128`), `https://` ones too, in absolute
//! form so the proxy can cache them. An HTML page is saved as `<title>.html`,
//! anything else under the name the server or the URL gives it; a file is
//! never overwritten and never appears half-written under its final name.
//!
//! Modules, one concern each:
//! - [`proxy_env`]: which proxy, from flags and environment (`NO_PROXY` matching);
//! - [`fetch`]: the request through the proxy, redirects, body chunks;
//! - [`reply`]: the proxy's cache status and error causes;
//! - [`media`], [`charset`], [`title`]: HTML or not, its encoding, its title;
//! - [`disposition`], [`naming`]: the file name (one pure function decides it);
//! - [`save`]: temporary file, atomic no-clobber rename;
//! - [`job`]: one URL from start to saved file;
//! - [`report`]: result lines, JSON, progress bars;
//! - [`complete`]: `--complete`, a page with its assets in one file;
//! - [`get`] and [`prompt`]: the two commands.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

pub mod charset;
pub mod complete;
pub mod disposition;
mod error;
pub mod fetch;
pub mod get;
pub mod job;
pub mod media;
pub mod naming;
pub mod prompt;
pub mod proxy_env;
pub mod reply;
pub mod report;
pub mod save;
pub mod title;

pub use error::ClientError;
pub use error::plain_io;

/// Options shared by `ferry get` and `ferry client` (the binary's flags
/// fill them in; [`Default`] gives the documented defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetOptions {
    /// URLs to fetch; `http://` is assumed when there is no scheme.
    pub urls: Vec<String>,
    /// The proxy to fetch through; `None`: the environment, else the default.
    pub proxy: Option<String>,
    /// Directory to save files in (created if missing).
    pub output_dir: PathBuf,
    /// Save the (single) URL under this name, relative to `output_dir`.
    pub output: Option<PathBuf>,
    /// How many URLs are fetched at the same time (at least 1).
    pub jobs: u16,
    /// Print nothing but errors.
    pub quiet: bool,
    /// One JSON object per URL on standard output.
    pub json: bool,
    /// Also save responses with an error status.
    pub save_errors: bool,
    /// Seconds to wait for the TCP connection to the proxy.
    pub connect_timeout: u64,
    /// Seconds to wait for the response, or for more of the body.
    pub timeout: u64,
    /// How many redirects to follow; 0 follows none.
    pub max_redirects: usize,
    /// Save HTML pages with their assets inlined (`--complete`).
    pub complete: bool,
    /// With `complete`: drop scripts and event handlers.
    pub no_js: bool,
    /// With `complete`: leave images out.
    pub no_images: bool,
    /// With `complete`: the largest asset inlined, in bytes.
    pub max_asset_size: u64,
    /// With `complete`: the most bytes a page's assets may fetch and add.
    pub max_page_size: u64,
}

/// Default `--max-asset-size`: 16 MiB.
pub const DEFAULT_MAX_ASSET_SIZE: u64 = 16 * 1024 * 1024;
/// Default `--max-page-size`: 64 MiB.
pub const DEFAULT_MAX_PAGE_SIZE: u64 = 64 * 1024 * 1024;

impl Default for GetOptions {
    fn default() -> Self {
        GetOptions {
            urls: Vec::new(),
            proxy: None,
            output_dir: PathBuf::from("."),
            output: None,
            jobs: 4,
            quiet: false,
            json: false,
            save_errors: false,
            connect_timeout: 10,
            timeout: 120,
            max_redirects: 10,
            complete: false,
            no_js: false,
            no_images: false,
            max_asset_size: DEFAULT_MAX_ASSET_SIZE,
            max_page_size: DEFAULT_MAX_PAGE_SIZE,
        }
    }
}

/// `ferry get`.
pub fn run_get(args: GetOptions) -> Result<ExitCode, ClientError> {
    get::run(args)
}

/// `ferry client`.
pub fn run_client(args: GetOptions) -> Result<ExitCode, ClientError> {
    prompt::run(args)
}

/// The settings every job of a run shares; fails on a bad `--proxy`.
fn settings_from(args: &GetOptions) -> Result<job::Settings, ClientError> {
    let selector =
        proxy_env::ProxySelector::new(args.proxy.as_deref(), proxy_env::ProxyEnv::from_env())?;
    Ok(job::Settings {
        selector,
        fetch: fetch::FetchOptions {
            connect_timeout: Duration::from_secs(args.connect_timeout.max(1)),
            idle_timeout: Duration::from_secs(args.timeout.max(1)),
            max_redirects: args.max_redirects,
        },
        output_dir: args.output_dir.clone(),
        save_errors: args.save_errors,
        complete: args.complete.then_some(complete::CompleteOptions {
            no_js: args.no_js,
            no_images: args.no_images,
            max_asset_size: args.max_asset_size,
            max_page_size: args.max_page_size,
        }),
        asset_slots: Arc::new(tokio::sync::Semaphore::new(usize::from(args.jobs.max(1)))),
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, ClientError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| ClientError::Io {
            context: "starting the async runtime",
            source,
        })
}
