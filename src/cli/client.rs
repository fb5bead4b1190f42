//! The flags `ferry get` and `ferry client` share; they become the client's
//! plain `GetOptions`.

use std::path::PathBuf;

use bytesize::ByteSize;
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

    /// Save each HTML page complete, as one self-contained file: stylesheets
    /// (with their @imports and url()s), images (srcset, <picture>, lazy-load
    /// attributes such as data-src), fonts, icons and scripts are inlined as
    /// data: URLs, frames as srcdoc documents (3 deep). Assets are fetched
    /// through the same proxy (so a second save comes from its cache), --jobs
    /// at a time. An asset that fails keeps its absolute URL and is counted on
    /// the page's line ("assets: N inlined, M failed"); the page still counts
    /// as saved.
    #[arg(long)]
    pub complete: bool,

    /// With --complete: leave out scripts, on* event handlers and javascript:
    /// URLs, for a static copy that runs nothing.
    #[arg(long, requires = "complete")]
    pub no_js: bool,

    /// With --complete: leave out images (img, srcset, icons, CSS images).
    #[arg(long, requires = "complete")]
    pub no_images: bool,

    /// With --complete: the largest asset inlined, e.g. 4MiB; larger ones stay links.
    #[arg(long, value_name = "SIZE", default_value = "16MiB")]
    pub max_asset_size: ByteSize,

    /// With --complete: the most a page's assets may fetch and add to it in
    /// all (also the largest page that is completed); assets past it stay links.
    #[arg(long, value_name = "SIZE", default_value = "32MiB")]
    pub max_page_size: ByteSize,
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
            complete: a.complete,
            no_js: a.no_js,
            no_images: a.no_images,
            max_asset_size: a.max_asset_size.as_u64(),
            max_page_size: a.max_page_size.as_u64(),
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
