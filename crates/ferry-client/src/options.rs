//! What `ferry get` and `ferry client` are given: the binary's flags fill in
//! [`GetOptions`], and this is where their documented defaults live.

use std::path::PathBuf;

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
/// Default `--max-page-size`: 32 MiB. It also sets the budget for the
/// page's parsed HTML (4 times as much), so one page completes in a few
/// hundred MiB at most.
pub const DEFAULT_MAX_PAGE_SIZE: u64 = 32 * 1024 * 1024;

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
