//! The caching forward proxy: listener and connections (`server`), the
//! request pipeline (`pipeline`), access control (`acl`, `auth`), the fetch
//! queue (`admission`), the upstream client (`upstream`), CONNECT tunnels
//! (`tunnel`), header rules (`headers`), error pages (`pages`), the proxy's
//! own endpoints (`dashboard`), the access log and counters (`metrics`).

use std::net::SocketAddr;

mod access_log;
mod acl;
mod admission;
mod auth;
mod body;
mod caching;
mod config;
mod dashboard;
mod forward;
mod headers;
mod metrics;
mod pages;
mod pipeline;
mod server;
mod stall;
mod state;
mod tunnel;
mod upstream;

pub use access_log::LogFormat;
pub use auth::AuthError;
pub use config::{CacheSection, ConfigError, ForwardedHeader, ProxyConfig, UserEntry};

/// Why the proxy could not start (or `hash-password` could not run).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Acl(#[from] acl::AclError),
    #[error(transparent)]
    Upstream(#[from] upstream::UpstreamError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot open access log {path}: {source}")]
    AccessLog {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

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
    runtime.block_on(server::serve(config))?;
    // Do not wait for blocking-pool threads (e.g. a stuck disk read) at exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(())
}

/// The argon2id hash of `password`, for `--auth-user NAME:HASH` or
/// `[[users]]` in the config.
pub fn hash_password(password: &str) -> Result<String, auth::AuthError> {
    auth::hash(password)
}
