//! The `ferry` binary: parses the command line (`cli`), sets up diagnostics,
//! and hands each subcommand's plain settings to the library that owns it.

mod cli;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, FerryCommand};

// jemalloc: glibc's malloc serializes the worker threads on its arena locks
// under load (measured: a tenth of the hit path's CPU in futex waits), while
// jemalloc's per-thread caches serve the hot sizes without a lock.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: anyhow::Result<ExitCode> = match cli.command {
        FerryCommand::Proxy(args) => run_proxy(&args),
        FerryCommand::Get(args) => ferry_client::run_get(args.into()).map_err(Into::into),
        FerryCommand::Client(args) => ferry_client::run_client(args.into()).map_err(Into::into),
        FerryCommand::Cache(args) => {
            let (dir, command) = args.into_command();
            ferry_cache::manage::run(&dir, command).map_err(Into::into)
        }
        FerryCommand::HashPassword(args) => cli::password::run(args),
        FerryCommand::Ca(args) => cli::ca::run(args),
        FerryCommand::Top(args) => cli::top::run(args),
        FerryCommand::Farm(args) => cli::farm::run(args),
        FerryCommand::Policy(args) => cli::policy::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("ferry: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_proxy(args: &cli::proxy::ProxyArgs) -> anyhow::Result<ExitCode> {
    let config = args.config()?;
    init_tracing();
    // jemalloc returns freed pages to the system only as it allocates, so a
    // proxy whose connections have gone quiet would keep what they let go
    // for as long as it stays quiet; its background thread returns them
    // (after jemalloc's 10 s decay) even then.
    if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
        tracing::warn!(error = %e, "the allocator's background thread could not start");
    }
    ferry_proxy::run(config)?;
    Ok(ExitCode::SUCCESS)
}

/// Diagnostics on standard error, filtered by `RUST_LOG` (default: warnings).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
