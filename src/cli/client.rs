//! The flags `ferry get` and `ferry client` share; they become the client's
//! plain `GetOptions`.

use std::path::PathBuf;

use ferry_client::GetOptions;

#[derive(Debug, Clone, clap::Args)]
pub struct GetArgs {
    /// URLs to fetch; `http://` is assumed when there is no scheme. (`ferry
    /// client` starts these at once, then shows its prompt.)
    #[arg(value_name = "URL")]
    pub urls: Vec<String>,

    /// Proxy to fetch through, `http://[user:pass@]host[:port]` (port 3128 if
    /// none). Default: `http_proxy` (http URLs), `https_proxy`/`HTTPS_PROXY`
    /// (https URLs), `all_proxy`/`ALL_PROXY`, with `no_proxy`/`NO_PROXY`
    /// exclusions, as curl reads them; else http://127.0.0.1:3128. Ferry never
    /// connects to a site directly: hosts excluded by NO_PROXY use the default.
    #[arg(short = 'x', long, value_name = "URL")]
    pub proxy: Option<String>,

    /// Directory to save files in (created if missing).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub output_dir: PathBuf,

    /// Save the (single) URL under this name, relative to --output-dir. An
    /// existing file is not overwritten: `FILE (2)` is used instead.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// How many URLs are fetched at the same time.
    #[arg(short = 'j', long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: u16,

    /// Print nothing but errors.
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Print one JSON object per URL on standard output (for scripts).
    #[arg(long)]
    pub json: bool,

    /// Also save responses with an error status (they still count as failures).
    #[arg(long)]
    pub save_errors: bool,

    /// Seconds to wait for the TCP connection to the proxy.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub connect_timeout: u64,

    /// Seconds to wait for the response, or for more of the body, before giving up.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub timeout: u64,

    /// How many redirects to follow (each one through the proxy); 0 follows none.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_redirects: usize,
}

impl From<GetArgs> for GetOptions {
    fn from(a: GetArgs) -> GetOptions {
        GetOptions {
            urls: a.urls,
            proxy: a.proxy,
            output_dir: a.output_dir,
            output: a.output,
            jobs: a.jobs,
            quiet: a.quiet,
            json: a.json,
            save_errors: a.save_errors,
            connect_timeout: a.connect_timeout,
            timeout: a.timeout,
            max_redirects: a.max_redirects,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: GetArgs,
    }

    #[test]
    fn flag_defaults_are_the_clients_defaults() {
        let parsed: GetOptions = Wrapper::parse_from(["ferry"]).args.into();
        assert_eq!(parsed, GetOptions::default());
    }
}
