//! The caching forward proxy. Modules, by concern:
//! - `listener`: listening sockets, client connections, signals, shutdown;
//! - `exchange`: one request's whole way, as phases over one context, and
//!   what the cache did (`CacheOutcome`);
//! - `access`: client addresses, proxy authentication, destination rules;
//! - `cache_path`: the cache's phases (lookup, hit, revalidation, collapsed
//!   misses, store while relaying);
//! - `upstream`: the fetch slots and their queue, the upstream client, the
//!   body relay;
//! - `tunnel`: CONNECT;
//! - `intercept`: TLS interception's local certificate authority;
//! - `ops`: access log, metrics, the proxy's own pages;
//! - `error`, `pages`, `headers`, `body`, `config`, `state`: the shared parts.

mod access;
mod body;
mod cache_path;
mod config;
mod error;
mod exchange;
mod headers;
pub mod intercept;
mod listener;
mod ops;
mod pages;
mod rate;
mod state;
mod tunnel;
mod upstream;

pub use access::AuthError;
pub use config::{CacheSection, ConfigError, ForwardedHeader, ProxyConfig, UserEntry};
pub use error::StartupError;
pub use ops::access_log::LogFormat;

/// `ferry proxy`: serves with `config` until SIGINT/SIGTERM, then drains.
/// The caller sets up diagnostics (`tracing`) first.
pub fn run(config: ProxyConfig) -> Result<(), StartupError> {
    config.validate()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(config.workers())
        .thread_name("ferry-worker")
        .build()
        .map_err(StartupError::Runtime)?;
    runtime.block_on(listener::serve(config))?;
    // Do not wait for blocking-pool threads (e.g. a stuck disk read) at exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(())
}

/// The argon2id hash of `password`, for `--auth-user NAME:HASH` or
/// `[[users]]` in the config.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    access::hash(password)
}
