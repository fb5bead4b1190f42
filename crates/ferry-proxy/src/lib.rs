//! The caching forward proxy: listener and connections (`server`), the
//! request pipeline (`pipeline`), access control (`acl`, `auth`), the fetch
//! queue (`admission`), the upstream client (`upstream`), CONNECT tunnels
//! (`tunnel`), header rules (`headers`), error pages (`pages`), the proxy's
//! own endpoints (`dashboard`), the access log and counters (`metrics`).

use std::io::{BufRead, IsTerminal};
use std::net::SocketAddr;
use std::process::ExitCode;

mod access_log;
mod acl;
mod admission;
mod auth;
mod body;
mod caching;
mod cli;
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
pub use cli::{HashPasswordArgs, ProxyArgs};
pub use config::{ConfigError, ProxyConfig};

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
    #[error("cannot read the password: {0}")]
    Password(std::io::Error),
    #[error("{0}")]
    Auth(#[from] auth::AuthError),
}

/// `ferry proxy`: load the configuration, then serve until SIGINT/SIGTERM.
pub fn run(args: ProxyArgs) -> Result<ExitCode, StartupError> {
    let config = ProxyConfig::load(&args)?;
    init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(config.workers())
        .thread_name("ferry-worker")
        .build()
        .map_err(StartupError::Runtime)?;
    runtime.block_on(server::serve(config))?;
    // Do not wait for blocking-pool threads (e.g. a stuck disk read) at exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(ExitCode::SUCCESS)
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// `ferry hash-password`: read a password and print its argon2id hash.
pub fn hash_password(_args: HashPasswordArgs) -> Result<ExitCode, StartupError> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").map_err(StartupError::Password)?;
        let again = rpassword::prompt_password("Again: ").map_err(StartupError::Password)?;
        if first != again {
            eprintln!("ferry: the passwords differ");
            return Ok(ExitCode::FAILURE);
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(StartupError::Password)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if password.is_empty() {
        eprintln!("ferry: empty password");
        return Ok(ExitCode::FAILURE);
    }
    println!("{}", auth::hash(&password)?);
    Ok(ExitCode::SUCCESS)
}
