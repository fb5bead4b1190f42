//! The caching forward proxy: listener, request pipeline, access control,
//! upstream client, tunnels, the proxy's own pages and its logs.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct ProxyArgs {}

#[derive(Debug, clap::Args)]
pub struct HashPasswordArgs {}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartupError {
    #[error("not built yet")]
    NotBuilt,
}

pub fn run(_args: ProxyArgs) -> Result<ExitCode, StartupError> {
    Err(StartupError::NotBuilt)
}

pub fn hash_password(_args: HashPasswordArgs) -> Result<ExitCode, StartupError> {
    Err(StartupError::NotBuilt)
}
