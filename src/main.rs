//! The `ferry` binary: parses the command line and hands each subcommand to the
//! library crate that owns it. Nothing else lives here.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

// jemalloc: glibc's malloc serializes the worker threads on its arena locks
// under load (measured: a tenth of the hit path's CPU in futex waits), while
// jemalloc's per-thread caches serve the hot sizes without a lock.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Ferry: a caching HTTP proxy and a client that saves web pages.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the caching proxy.
    Proxy(Box<ferry_proxy::ProxyArgs>),
    /// Fetch URLs through the proxy and save each as a file.
    Get(ferry_client::GetArgs),
    /// Interactive prompt: `get URL...`, `jobs`, `help`, `quit`.
    Client(ferry_client::GetArgs),
    /// Inspect and manage the cache directory.
    Cache(ferry_cache::cli::CacheArgs),
    /// Read a password from standard input and print its argon2 hash for the
    /// proxy's `[[auth.users]]` config.
    HashPassword(ferry_proxy::HashPasswordArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: anyhow::Result<ExitCode> = match cli.command {
        Command::Proxy(args) => ferry_proxy::run(*args).map_err(Into::into),
        Command::Get(args) => ferry_client::run_get(args).map_err(Into::into),
        Command::Client(args) => ferry_client::run_client(args).map_err(Into::into),
        Command::Cache(args) => ferry_cache::cli::run(args).map_err(Into::into),
        Command::HashPassword(args) => ferry_proxy::hash_password(args).map_err(Into::into),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("ferry: {err:#}");
            ExitCode::FAILURE
        }
    }
}
