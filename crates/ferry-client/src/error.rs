//! The crate's one error type. Each variant is a message a user can act on:
//! which URL, which proxy, what went wrong, in plain words. A failed URL is
//! reported with one of these and the other URLs carry on.

use std::path::PathBuf;

use http::StatusCode;

/// Everything that can go wrong in `ferry get` / `ferry client`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The command line does not make sense (e.g. `-o` with two URLs).
    #[error("{0}")]
    Usage(String),

    /// The text given as a URL cannot be fetched.
    #[error("bad URL {input:?}: {reason}")]
    BadUrl { input: String, reason: String },

    /// The proxy URL (from `--proxy` or the environment) is unusable.
    #[error("bad proxy URL {input:?} (from {origin}): {reason}")]
    BadProxy {
        input: String,
        origin: &'static str,
        reason: String,
    },

    /// No TCP connection to the proxy: it is not running, or not there.
    #[error(
        "cannot reach the proxy at {proxy} ({origin}): {}; is `ferry proxy` running there? (choose another with --proxy)",
        plain_io(source)
    )]
    ProxyUnreachable {
        proxy: String,
        origin: &'static str,
        #[source]
        source: std::io::Error,
    },

    /// The proxy connection broke or spoke something other than HTTP.
    #[error("talking to the proxy at {proxy} failed: {source}")]
    ProxyProtocol {
        proxy: String,
        #[source]
        source: hyper::Error,
    },

    /// Nothing arrived from the proxy for too long.
    #[error("timed out after {secs} s waiting for the proxy at {proxy} ({stage})")]
    Timeout {
        proxy: String,
        secs: u64,
        stage: &'static str,
    },

    /// The proxy refused the destination (403 page from the proxy).
    #[error("blocked by the proxy ({status}): {cause}")]
    Blocked { status: StatusCode, cause: String },

    /// The proxy wants credentials (407).
    #[error(
        "the proxy requires a user name and password ({status}); give them as user:pass@ in the proxy URL"
    )]
    ProxyAuth { status: StatusCode },

    /// The proxy could not get the page from the origin (its own 502/503/504 page).
    #[error("the proxy could not fetch the page ({status}): {cause}")]
    Upstream { status: StatusCode, cause: String },

    /// The origin answered with an error status (or the proxy with one not covered above).
    #[error("{status}{}{}", if cause.is_empty() { "" } else { ": " }, cause)]
    Status { status: StatusCode, cause: String },

    /// Redirects did not end.
    #[error("stopped after {0} redirects")]
    TooManyRedirects(usize),

    /// A redirect without a usable `Location`.
    #[error("redirect ({status}) with a bad or missing Location: {reason}")]
    BadRedirect { status: StatusCode, reason: String },

    /// The body broke off before it was complete.
    #[error("download interrupted after {bytes} bytes: {source}")]
    Interrupted {
        bytes: u64,
        #[source]
        source: hyper::Error,
    },

    /// Writing the file failed.
    #[error("cannot write {}: {source}", path.display())]
    Save {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The interactive prompt's line editor failed.
    #[error("line editor: {0}")]
    Readline(#[from] rustyline::error::ReadlineError),

    /// Starting the async runtime or another local I/O failure.
    #[error("{context}: {source}")]
    Io {
        context: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// An I/O error in words, without the `(os error N)` tail for the common cases.
pub fn plain_io(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::ConnectionRefused => "connection refused".to_string(),
        ErrorKind::ConnectionReset => "connection reset".to_string(),
        ErrorKind::HostUnreachable => "host unreachable".to_string(),
        ErrorKind::NetworkUnreachable => "network unreachable".to_string(),
        ErrorKind::AddrNotAvailable => "address not available".to_string(),
        _ => e.to_string(),
    }
}

impl ClientError {
    /// A short machine-friendly kind, used in `--json` output.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientError::Usage(_) => "usage",
            ClientError::BadUrl { .. } => "bad_url",
            ClientError::BadProxy { .. } => "bad_proxy",
            ClientError::ProxyUnreachable { .. } => "proxy_unreachable",
            ClientError::ProxyProtocol { .. } => "proxy_protocol",
            ClientError::Timeout { .. } => "timeout",
            ClientError::Blocked { .. } => "blocked",
            ClientError::ProxyAuth { .. } => "proxy_auth",
            ClientError::Upstream { .. } => "upstream",
            ClientError::Status { .. } => "status",
            ClientError::TooManyRedirects(_) => "too_many_redirects",
            ClientError::BadRedirect { .. } => "bad_redirect",
            ClientError::Interrupted { .. } => "interrupted",
            ClientError::Save { .. } => "save",
            ClientError::Readline(_) => "readline",
            ClientError::Io { .. } => "io",
        }
    }
}
