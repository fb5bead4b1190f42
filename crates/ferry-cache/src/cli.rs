//! `ferry cache ls / stats / purge URL / clear`.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct CacheArgs {}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheCliError {
    #[error("not built yet")]
    NotBuilt,
}

pub fn run(_args: CacheArgs) -> Result<ExitCode, CacheCliError> {
    Err(CacheCliError::NotBuilt)
}
