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
//! - [`get`] and [`prompt`]: the two commands.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

pub mod charset;
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

/// Options shared by `ferry get` and `ferry client`.
#[derive(Debug, Clone, clap::Args)]
pub struct GetArgs {
    /// URLs to fetch; `http://` is assumed when there is no scheme. (`ferry
    /// client` starts these at once, then shows its prompt.)
    #[arg(value_name = "URL")]
    pub urls: Vec<String>,

    /// Proxy to fetch through, `http://[user:pass@]host[:port]` (port 3128 if
    /// none). Default: `http_proxy` (http URLs), `https_proxy`/`HTTPS_PROXY`
    /// (https URLs), `all_proxy`/`ALL_PROXY`, with `no_proxy`/`NO_PROXY`
    /// exclusions, as curl reads them; else http://127.0.0.1:3128. Ferry never
    /// connects to a site directly: hosts excluded by NO_PROXY use the default.
    #[arg(short = 'x', long, value_name = "URL")]
    pub proxy: Option<String>,

    /// Directory to save files in (created if missing).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub output_dir: PathBuf,

    /// Save the (single) URL under this name, relative to --output-dir. An
    /// existing file is not overwritten: `FILE (2)` is used instead.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// How many URLs are fetched at the same time.
    #[arg(short = 'j', long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: u16,

    /// Print nothing but errors.
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Print one JSON object per URL on standard output (for scripts).
    #[arg(long)]
    pub json: bool,

    /// Also save responses with an error status (they still count as failures).
    #[arg(long)]
    pub save_errors: bool,

    /// Seconds to wait for the TCP connection to the proxy.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub connect_timeout: u64,

    /// Seconds to wait for the response, or for more of the body, before giving up.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub timeout: u64,

    /// How many redirects to follow (each one through the proxy); 0 follows none.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_redirects: usize,
}

/// `ferry get`.
pub fn run_get(args: GetArgs) -> Result<ExitCode, ClientError> {
    get::run(args)
}

/// `ferry client`.
pub fn run_client(args: GetArgs) -> Result<ExitCode, ClientError> {
    prompt::run(args)
}

/// The settings every job of a run shares; fails on a bad `--proxy`.
fn settings_from(args: &GetArgs) -> Result<job::Settings, ClientError> {
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
