//! The caching forward proxy. Its modules are floors, each importing only
//! from the floors below it (`ARCHITECTURE.md` draws them; the workspace's
//! layering test keeps them):
//!
//! 1. vocabulary: `config`, `conn`, `outcome` (what happened to a request),
//!    `body`, `pages`, `headers`, `timeouts`, `turns` (an HTTP/1 connection
//!    served in turns, so a quiet one holds almost nothing);
//! 2. rules and clients, without the proxy's state: `access` (the rules),
//!    `upstream` (the origin client, fetch slots, body relay), `intercept`
//!    (the local CA and its leaves), `cache_rules`, `groups` (groups of
//!    clients, subscribed lists, schedules, rates, quotas);
//! 3. `error`, which gathers the failures of the floors below;
//! 4. `telemetry`: access log, metrics, recent activity;
//! 5. `state`: what every request shares;
//! 6. `phases`: policy checks, forwarding, caching, tunnels;
//! 7. `own_pages`: the dashboard and the proxy's other pages;
//!    `background`: the subscribed lists' refresh, the quota counts' saving;
//!    `explain`: `ferry policy test`;
//! 8. `exchange`: one request's whole way through the phases;
//! 9. `listener`: sockets, connections, signals, shutdown.

mod access;
mod background;
mod body;
mod cache_rules;
mod config;
mod conn;
mod error;
mod exchange;
mod explain;
mod groups;
mod headers;
mod host;
pub mod intercept;
mod listener;
mod outcome;
mod own_pages;
mod pages;
mod phases;
mod state;
mod telemetry;
mod timeouts;
mod turns;
mod upstream;

pub use access::AuthError;
pub use config::{
    CacheRuleConfig, CacheSection, ConfigError, ForwardedHeader, LogFormat, ProxyConfig,
    UpstreamRoots, UserEntry,
};
pub use error::StartupError;
pub use explain::{ExplainError, PolicyQuery, explain as explain_policy};

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
    runtime.block_on(listener::serve_until_stopped(config))?;
    // Do not wait for blocking-pool threads (e.g. a stuck disk read) at exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(())
}

/// The argon2id hash of `password`, for `--auth-user NAME:HASH` or
/// `[[users]]` in the config.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    access::hash(password)
}
