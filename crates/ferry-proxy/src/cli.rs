//! Command-line options of `ferry proxy` and `ferry hash-password`.
//!
//! Every option is optional here so that [`crate::config`] can tell "given on the
//! command line" (overrides the file) from "not given" (the file or the default
//! decides). Defaults are stated in the help text and live in `config.rs`.

use std::net::SocketAddr;
use std::path::PathBuf;

use bytesize::ByteSize;
use ipnet::IpNet;

use crate::access_log::LogFormat;
use crate::config::ForwardedHeader;

/// Run the caching proxy.
///
/// Example: `ferry proxy` then `curl -x http://127.0.0.1:3128 http://example.com/`.
#[derive(Debug, Default, clap::Args)]
#[command(next_line_help = false)]
pub struct ProxyArgs {
    /// TOML configuration file (see ferry.example.toml); flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address to listen on; repeat for several (IPv6: [::1]:3128).
    /// [default: 127.0.0.1:3128]
    #[arg(long, value_name = "ADDR")]
    pub listen: Vec<SocketAddr>,

    /// Worker threads serving connections; 0 = one per CPU core. [default: 0]
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,

    /// Most origin fetches at once; further requests wait in arrival order.
    /// [default: 5]
    #[arg(long, value_name = "N")]
    pub max_concurrent: Option<usize>,

    /// Most requests waiting for a fetch slot; beyond it, 503. [default: 1024]
    #[arg(long, value_name = "N")]
    pub max_queue: Option<usize>,

    /// Longest wait for a fetch slot before 503, in seconds. [default: 60]
    #[arg(long, value_name = "SECS")]
    pub queue_timeout: Option<u64>,

    /// Most CONNECT tunnels open at once; beyond it, 503. [default: 256]
    #[arg(long, value_name = "N")]
    pub max_tunnels: Option<usize>,

    /// Port CONNECT may reach; repeat for several. [default: 443]
    #[arg(long, value_name = "PORT")]
    pub connect_port: Vec<u16>,

    /// Client network allowed to use the proxy; repeat for several.
    /// [default: 127.0.0.0/8 and ::1/128]
    #[arg(long, value_name = "CIDR")]
    pub allow_client: Vec<IpNet>,

    /// Refuse this destination domain (`example.com`: it and its subdomains;
    /// `*.example.com`: only subdomains); repeatable.
    #[arg(long, value_name = "PATTERN")]
    pub deny_domain: Vec<String>,

    /// Allow only these destination domains (same patterns); repeatable.
    /// Empty: everything not denied is allowed.
    #[arg(long, value_name = "PATTERN")]
    pub allow_domain: Vec<String>,

    /// File of deny patterns, one a line (`#` comments, hosts-file lines such as
    /// `0.0.0.0 ads.example` accepted); reloaded on SIGHUP. Repeatable.
    #[arg(long, value_name = "FILE")]
    pub deny_list: Vec<PathBuf>,

    /// File of allow patterns, same format as --deny-list; reloaded on SIGHUP.
    #[arg(long, value_name = "FILE")]
    pub allow_list: Vec<PathBuf>,

    /// Require proxy authentication (Basic) for this user: `NAME:ARGON2-HASH`
    /// (make the hash with `ferry hash-password`). Repeatable.
    #[arg(long, value_name = "NAME:HASH")]
    pub auth_user: Vec<String>,

    /// Realm shown in `Proxy-Authenticate`. [default: ferry]
    #[arg(long, value_name = "REALM")]
    pub auth_realm: Option<String>,

    /// Extra PEM file of root certificates trusted for upstream TLS (on top of
    /// the usual web roots); repeatable.
    #[arg(long, value_name = "FILE")]
    pub upstream_ca: Vec<PathBuf>,

    /// Seconds to wait for an upstream TCP/TLS connection. [default: 10]
    #[arg(long, value_name = "SECS")]
    pub connect_timeout: Option<u64>,

    /// Seconds to wait for upstream response headers, and the longest pause
    /// allowed while relaying a body (an origin that stops sending, or a client
    /// that stops reading). [default: 60]
    #[arg(long, value_name = "SECS")]
    pub response_timeout: Option<u64>,

    /// Seconds a client has to send a complete request head; also closes idle
    /// keep-alive connections after this long. [default: 30]
    #[arg(long, value_name = "SECS")]
    pub header_timeout: Option<u64>,

    /// Seconds to let in-flight requests finish on SIGINT/SIGTERM. [default: 30]
    #[arg(long, value_name = "SECS")]
    pub shutdown_timeout: Option<u64>,

    /// Seconds a CONNECT tunnel may carry no traffic before it is closed.
    /// [default: 600]
    #[arg(long, value_name = "SECS")]
    pub tunnel_idle_timeout: Option<u64>,

    /// Access log destination: a file path, or `-` for stdout. [default: -]
    #[arg(long, value_name = "FILE")]
    pub access_log: Option<String>,

    /// Access log line format. [default: common]
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    /// Name this proxy gives itself in `Via` (never the host name). [default: ferry]
    #[arg(long, value_name = "NAME")]
    pub via_pseudonym: Option<String>,

    /// Tell origins the client's address: `none`, `x-forwarded-for` or
    /// `forwarded`. [default: none]
    #[arg(long, value_name = "MODE")]
    pub forwarded_header: Option<ForwardedHeader>,

    /// Cache directory. [default: the platform cache dir, e.g. ~/.cache/ferry]
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Run without a cache: every request goes to the origin.
    #[arg(long)]
    pub no_cache: bool,

    /// Most bytes the cache directory may hold, e.g. 512MiB, 2GiB. [default: 1GiB]
    #[arg(long, value_name = "SIZE")]
    pub cache_size: Option<ByteSize>,

    /// Largest response the cache stores. [default: 64MiB]
    #[arg(long, value_name = "SIZE")]
    pub max_object_size: Option<ByteSize>,

    /// Memory tier for hot small objects. [default: 64MiB]
    #[arg(long, value_name = "SIZE")]
    pub memory_cache_size: Option<ByteSize>,

    /// Longest freshness, in seconds, given by heuristic (10% of the time since
    /// Last-Modified, for responses without explicit freshness). [default: 86400]
    #[arg(long, value_name = "SECS")]
    pub heuristic_max: Option<u64>,
}

/// Read a password from standard input (or a prompt on a terminal) and print
/// its argon2id hash, for `--auth-user NAME:HASH` or `[[users]]` in the config.
#[derive(Debug, clap::Args)]
pub struct HashPasswordArgs {}
