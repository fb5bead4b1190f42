//! `ferry cache`'s flags; the commands themselves are `ferry_cache::manage`.

use std::path::PathBuf;

use ferry_cache::CacheConfig;
use ferry_cache::manage::Command;

#[derive(Debug, clap::Args)]
pub struct CacheArgs {
    /// Cache directory. [default: the platform cache dir, e.g. ~/.cache/ferry]
    #[arg(long, value_name = "DIR", global = true)]
    pub cache_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: CacheCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum CacheCommand {
    /// List stored responses: size, age, freshness left, URL.
    Ls {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Totals: objects, bytes, fresh and stale counts.
    Stats {
        #[arg(long)]
        json: bool,
    },
    /// Remove what is stored for URL (all its variants).
    Purge {
        /// The URL as requested through the proxy, e.g. http://example.com/page
        url: String,
    },
    /// Remove everything stored.
    Clear,
}

impl CacheArgs {
    /// The directory to work on and the command to run there.
    pub fn into_command(self) -> (PathBuf, Command) {
        let dir = self.cache_dir.unwrap_or_else(CacheConfig::default_dir);
        let command = match self.command {
            CacheCommand::Ls { json } => Command::Ls { json },
            CacheCommand::Stats { json } => Command::Stats { json },
            CacheCommand::Purge { url } => Command::Purge { url },
            CacheCommand::Clear => Command::Clear,
        };
        (dir, command)
    }
}
