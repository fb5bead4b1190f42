//! The command line: one clap struct per subcommand, each turned into the
//! plain settings its library takes. The libraries never see clap.

pub mod ca;
pub mod cache;
pub mod client;
pub mod farm;
pub mod password;
pub mod policy;
pub mod proxy;
pub mod top;

use clap::{Parser, Subcommand};

/// Ferry: a caching HTTP proxy and a client that saves web pages.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: FerryCommand,
}

#[derive(Debug, Subcommand)]
pub enum FerryCommand {
    /// Run the caching proxy.
    Proxy(Box<proxy::ProxyArgs>),
    /// Fetch URLs through the proxy and save each as a file.
    Get(client::GetArgs),
    /// Interactive prompt: `get URL...`, `jobs`, `help`, `quit`.
    Client(client::GetArgs),
    /// Inspect and manage the cache directory.
    Cache(cache::CacheArgs),
    /// The local certificate authority for TLS interception.
    Ca(ca::CaArgs),
    /// Watch a running proxy: requests, hit ratios, fetch slots, the cache,
    /// top hosts and the last requests, refreshed from its /api/stats.
    Top(top::TopArgs),
    /// Ask what the proxy's rules would do: `ferry policy test --client IP URL`.
    Policy(policy::PolicyArgs),
    /// Run several proxies as one sharded cache behind HAProxy.
    Farm(farm::FarmArgs),
    /// Read a password from standard input and print its argon2 hash for the
    /// proxy's `[[auth.users]]` config.
    HashPassword(password::HashPasswordArgs),
}
