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
//! - [`dom`]: HTML parsed within a memory and work budget;
//! - [`disposition`], [`naming`]: the file name (one pure function decides it);
//! - [`save`]: temporary file, atomic no-clobber rename;
//! - [`job`]: one URL from start to saved file;
//! - [`report`]: result lines, JSON, progress bars;
//! - [`complete`]: `--complete`, a page with its assets in one file;
//! - [`GetOptions`] (`options`): what the two commands are given;
//! - [`get`] and [`prompt`]: the two commands.
//!
//! This file only declares the modules, re-exports, and starts the two
//! commands; no module imports it.

use std::process::ExitCode;

pub mod charset;
pub mod complete;
pub mod disposition;
pub mod dom;
mod error;
pub mod fetch;
pub mod get;
pub mod job;
pub mod media;
pub mod naming;
mod options;
pub mod prompt;
pub mod proxy_env;
pub mod reply;
pub mod report;
pub mod save;
pub mod title;

pub use error::ClientError;
pub use error::plain_io;
pub use options::{DEFAULT_MAX_ASSET_SIZE, DEFAULT_MAX_PAGE_SIZE, GetOptions};

/// `ferry get`.
pub fn run_get(args: GetOptions) -> Result<ExitCode, ClientError> {
    get::run(args)
}

/// `ferry client`.
pub fn run_client(args: GetOptions) -> Result<ExitCode, ClientError> {
    prompt::run(args)
}
