//! The page-saving client: `ferry get` and the interactive `ferry client`.

use std::process::ExitCode;

/// Options shared by `ferry get` and `ferry client`.
#[derive(Debug, clap::Args)]
pub struct GetArgs {
    /// URLs to fetch.
    pub urls: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("not built yet")]
    NotBuilt,
}

pub fn run_get(_args: GetArgs) -> Result<ExitCode, ClientError> {
    Err(ClientError::NotBuilt)
}

pub fn run_client(_args: GetArgs) -> Result<ExitCode, ClientError> {
    Err(ClientError::NotBuilt)
}
