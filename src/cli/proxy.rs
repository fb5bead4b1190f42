//! `ferry proxy`'s flags, and how they become the proxy's configuration.
//!
//! Every option is optional here so that a flag given on the command line
//! overrides the file while one not given leaves the file's value (or the
//! default) alone. Defaults are stated in the help text and live in the
//! libraries (`ferry_proxy::ProxyConfig`, `ferry_cache::CacheConfig`).

use std::net::SocketAddr;
use std::path::PathBuf;

use bytesize::ByteSize;
use ipnet::IpNet;

use ferry_proxy::{ConfigError, ForwardedHeader, LogFormat, ProxyConfig, UpstreamRoots, UserEntry};

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

    /// Most client connections open at once; more are closed at accept.
    /// [default: 10000]
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,

    /// Most connections one client address may hold open. [default: 512]
    #[arg(long, value_name = "N")]
    pub max_connections_per_client: Option<usize>,

    /// Port CONNECT may reach; repeat for several. [default: 443]
    #[arg(long, value_name = "PORT")]
    pub connect_port: Vec<u16>,

    /// Client network allowed to use the proxy; repeat for several.
    /// [default: 127.0.0.0/8 and ::1/128]
    #[arg(long, value_name = "CIDR")]
    pub allow_client: Vec<IpNet>,

    /// Client network allowed to ask about or change what is stored (PURGE);
    /// repeat for several. [default: 127.0.0.0/8 and ::1/128]
    #[arg(long, value_name = "CIDR")]
    pub admin_client: Vec<IpNet>,

    /// Load balancer network (HAProxy) whose connections start with a PROXY
    /// protocol header (v1 or v2) naming the client; repeatable. Client
    /// rules, caps, fairness and logs then use that client. Connections from
    /// these addresses without the header, and headers from anyone else, are
    /// refused.
    #[arg(long, value_name = "CIDR")]
    pub proxy_protocol_from: Vec<IpNet>,

    /// Refuse destinations in this network, checked on the addresses a name
    /// resolves to (and for CONNECT); repeatable.
    #[arg(long, value_name = "CIDR")]
    pub deny_network: Vec<IpNet>,

    /// Allow only destinations in these networks (checked after DNS);
    /// repeatable. Also opens what is refused by default: link-local
    /// addresses (169.254.0.0/16, fe80::/10: cloud metadata), and this host's
    /// own addresses for clients on other hosts.
    #[arg(long, value_name = "CIDR")]
    pub allow_network: Vec<IpNet>,

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
    /// --upstream-roots); repeatable.
    #[arg(long, value_name = "FILE")]
    pub upstream_ca: Vec<PathBuf>,

    /// Which certificate authorities upstream TLS trusts besides
    /// --upstream-ca: `system` (the operating system's store, as curl and
    /// apt), `bundled` (the Mozilla roots built into Ferry) or `none`.
    /// [default: system]
    #[arg(long, value_name = "ROOTS")]
    pub upstream_roots: Option<UpstreamRoots>,

    /// Directory of the local CA made by `ferry ca init`, offered at `/ca`.
    /// [default: the platform config dir, e.g. ~/.config/ferry]
    #[arg(long, value_name = "DIR")]
    pub ca_dir: Option<PathBuf>,

    /// Intercept HTTPS: answer CONNECT with TLS made by the local CA
    /// (`ferry ca init`; clients must trust it), so the requests inside are
    /// checked by the URL rules and cached. Off by default.
    #[arg(long)]
    pub intercept_tls: bool,

    /// Never intercept this site's tunnels (same patterns as --deny-domain):
    /// pinned apps, banking. Repeatable.
    #[arg(long, value_name = "PATTERN")]
    pub no_intercept: Vec<String>,

    /// File of sites never intercepted, same format as --deny-list; reloaded
    /// on SIGHUP. Repeatable.
    #[arg(long, value_name = "FILE")]
    pub no_intercept_list: Vec<PathBuf>,

    /// Most upstream connections kept for reuse, all origins together; beyond
    /// it connections serve one exchange and close. [default: 512]
    #[arg(long, value_name = "N")]
    pub max_pooled_upstream: Option<usize>,

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

    /// The minimum transfer rate, in bytes per --transfer-window of waiting on
    /// an origin sending a body or a client reading one; slower transfers are
    /// cut off (a trickle must not hold a fetch slot). [default: 1024]
    #[arg(long, value_name = "BYTES")]
    pub min_transfer_bytes: Option<u64>,

    /// The window of the minimum transfer rate, in seconds. [default: 60]
    #[arg(long, value_name = "SECS")]
    pub transfer_window: Option<u64>,

    /// Seconds to let in-flight requests finish on SIGINT/SIGTERM. [default: 30]
    #[arg(long, value_name = "SECS")]
    pub shutdown_timeout: Option<u64>,

    /// Seconds to keep serving after SIGINT/SIGTERM while `/healthz`
    /// answers 503, so a load balancer takes this node out before its
    /// listener closes (longer than the balancer's fall × inter).
    /// [default: 0]
    #[arg(long, value_name = "SECS")]
    pub drain_period: Option<u64>,

    /// Seconds a CONNECT tunnel may carry no traffic before it is closed.
    /// [default: 600]
    #[arg(long, value_name = "SECS")]
    pub tunnel_idle_timeout: Option<u64>,

    /// Access log destination: a file path, or `-` for stdout. [default: -]
    #[arg(long, value_name = "FILE")]
    pub access_log: Option<String>,

    /// Access log line format: `common` or `json`. [default: common]
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    /// Name this proxy gives itself in `Via` and `Cache-Status` (never the
    /// host name). [default: ferry]
    #[arg(long, value_name = "NAME")]
    pub via_pseudonym: Option<String>,

    /// A host name clients reach this proxy by (repeatable), e.g.
    /// `proxy.school.lan`: its own pages (dashboard, /metrics, proxy.pac)
    /// answer only to its addresses, `localhost`, this machine's name and
    /// these, so a site that re-binds its own name to the proxy gets nothing.
    #[arg(long = "public-name", value_name = "NAME")]
    pub public_name: Vec<String>,

    /// This node's name in a farm: the proxy calls itself `ferry-NAME` in
    /// `Cache-Status` and `Via`, so responses say which node answered.
    #[arg(long, value_name = "NAME", conflicts_with = "via_pseudonym")]
    pub node_name: Option<String>,

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

    /// An operator cache rule (repeatable), tried in order before the
    /// presets: comma-separated `key=value` pairs with the keys of
    /// `[[cache_rules]]` in the config, e.g.
    /// `name=isos,host=mirror.example,path=/isos/**,fresh=7d`.
    #[arg(long = "cache-rule", value_name = "RULE")]
    pub cache_rule: Vec<ferry_proxy::CacheRuleConfig>,

    /// Cache rules that know the package ecosystems by the shape of their
    /// URLs (repeatable): `packages` for all of them, or one of `debian`,
    /// `pypi`, `npm`, `crates`, `go`, `maven`, `rubygems`, `oci`.
    #[arg(long = "cache-preset", value_name = "PRESET")]
    pub cache_preset: Vec<String>,

    /// How long the presets keep index files (Release, simple pages,
    /// package documents, the crates index) fresh when the origin says
    /// nothing. [default: 1m]
    #[arg(long, value_name = "DURATION")]
    pub preset_index_fresh: Option<String>,

    /// Who to ask about a refusal (a name, an address, a phone number),
    /// shown on every refusal page. Groups and subscribed lists are set in
    /// the config file (`[[groups]]`, `[[lists]]`).
    #[arg(long, value_name = "TEXT")]
    pub block_page_contact: Option<String>,

    /// Where the proxy keeps its state: the subscribed lists' last good
    /// copies and the daily quota counts. [default: the platform data dir,
    /// e.g. ~/.local/share/ferry]
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

impl ProxyArgs {
    /// The defaults, then the `--config` file if given, then these flags;
    /// checked before it is returned.
    pub fn config(&self) -> Result<ProxyConfig, ConfigError> {
        let mut config = match &self.config {
            Some(path) => ProxyConfig::from_file(path)?,
            None => ProxyConfig::default(),
        };
        self.apply(&mut config)?;
        config.validate()?;
        Ok(config)
    }

    /// Writes the flags that were given over `config`.
    fn apply(&self, c: &mut ProxyConfig) -> Result<(), ConfigError> {
        fn set<T: Clone>(slot: &mut T, flag: &Option<T>) {
            if let Some(v) = flag {
                *slot = v.clone();
            }
        }
        fn set_list<T: Clone>(slot: &mut Vec<T>, flag: &[T]) {
            if !flag.is_empty() {
                *slot = flag.to_vec();
            }
        }
        set_list(&mut c.listen, &self.listen);
        set(&mut c.max_concurrent, &self.max_concurrent);
        set(&mut c.max_queue, &self.max_queue);
        set(&mut c.queue_timeout, &self.queue_timeout);
        set(&mut c.workers, &self.workers);
        set(&mut c.max_tunnels, &self.max_tunnels);
        set(&mut c.max_connections, &self.max_connections);
        set(
            &mut c.max_connections_per_client,
            &self.max_connections_per_client,
        );
        set_list(&mut c.connect_ports, &self.connect_port);
        set_list(&mut c.allow_clients, &self.allow_client);
        set_list(&mut c.admin_clients, &self.admin_client);
        set_list(&mut c.proxy_protocol_from, &self.proxy_protocol_from);
        set_list(&mut c.deny_networks, &self.deny_network);
        set_list(&mut c.allow_networks, &self.allow_network);
        set_list(&mut c.deny_domains, &self.deny_domain);
        set_list(&mut c.allow_domains, &self.allow_domain);
        set_list(&mut c.deny_lists, &self.deny_list);
        set_list(&mut c.allow_lists, &self.allow_list);
        if !self.auth_user.is_empty() {
            c.users = self
                .auth_user
                .iter()
                .map(|spec| spec.parse::<UserEntry>())
                .collect::<Result<_, _>>()?;
        }
        set(&mut c.auth_realm, &self.auth_realm);
        set_list(&mut c.upstream_ca, &self.upstream_ca);
        set(&mut c.upstream_roots, &self.upstream_roots);
        if self.intercept_tls {
            c.intercept_tls = true;
        }
        set_list(&mut c.no_intercept, &self.no_intercept);
        set_list(&mut c.no_intercept_lists, &self.no_intercept_list);
        if self.ca_dir.is_some() {
            c.ca_dir = self.ca_dir.clone();
        }
        set(&mut c.max_pooled_upstream, &self.max_pooled_upstream);
        set(&mut c.connect_timeout, &self.connect_timeout);
        set(&mut c.response_timeout, &self.response_timeout);
        set(&mut c.header_timeout, &self.header_timeout);
        set(&mut c.min_transfer_bytes, &self.min_transfer_bytes);
        set(&mut c.transfer_window, &self.transfer_window);
        set(&mut c.shutdown_timeout, &self.shutdown_timeout);
        set(&mut c.drain_period, &self.drain_period);
        set(&mut c.tunnel_idle_timeout, &self.tunnel_idle_timeout);
        set(&mut c.access_log, &self.access_log);
        set(&mut c.log_format, &self.log_format);
        set(&mut c.via_pseudonym, &self.via_pseudonym);
        set_list(&mut c.public_names, &self.public_name);
        if let Some(node) = &self.node_name {
            c.via_pseudonym = format!("ferry-{node}");
        }
        set(&mut c.forwarded_header, &self.forwarded_header);
        if self.cache_dir.is_some() {
            c.cache.dir = self.cache_dir.clone();
        }
        if self.no_cache {
            c.cache.enabled = false;
        }
        set(&mut c.cache.size, &self.cache_size);
        set(&mut c.cache.max_object_size, &self.max_object_size);
        set_list(&mut c.cache_rules, &self.cache_rule);
        set_list(&mut c.cache_presets, &self.cache_preset);
        set(&mut c.preset_index_fresh, &self.preset_index_fresh);
        if self.block_page_contact.is_some() {
            c.block_page_contact = self.block_page_contact.clone();
        }
        if self.state_dir.is_some() {
            c.state_dir = self.state_dir.clone();
        }
        set(&mut c.cache.memory_size, &self.memory_cache_size);
        set(&mut c.cache.heuristic_max, &self.heuristic_max);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: ProxyArgs,
    }

    fn args(list: &[&str]) -> ProxyArgs {
        let mut argv = vec!["ferry"];
        argv.extend_from_slice(list);
        Wrapper::parse_from(argv).args
    }

    #[test]
    fn defaults_match_the_documented_values() {
        let c = args(&[]).config().unwrap();
        assert_eq!(c.listen, vec!["127.0.0.1:3128".parse().unwrap()]);
        assert_eq!(c.max_concurrent, 5);
        assert_eq!(c.max_queue, 1024);
        assert_eq!(c.queue_timeout, 60);
        assert_eq!(c.max_tunnels, 256);
        assert_eq!(c.connect_ports, vec![443]);
        assert_eq!(c.allow_clients.len(), 2);
        assert_eq!(c.admin_clients, c.allow_clients);
        assert_eq!(c.via_pseudonym, "ferry");
        assert_eq!(c.forwarded_header, ForwardedHeader::None);
        assert!(c.cache.enabled);
        assert_eq!(c.cache.size, ByteSize::gib(1));
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferry.toml");
        std::fs::write(
            &path,
            "max_concurrent = 9\nmax_queue = 7\nlisten = [\"[::1]:8080\"]\n[cache]\nsize = \"512MiB\"\n",
        )
        .unwrap();
        let path_s = path.to_str().unwrap();
        let c = args(&["--config", path_s, "--max-concurrent", "3"])
            .config()
            .unwrap();
        assert_eq!(c.max_concurrent, 3, "flag wins");
        assert_eq!(c.max_queue, 7, "file wins over default");
        assert_eq!(c.listen, vec!["[::1]:8080".parse().unwrap()]);
        assert_eq!(c.cache.size, ByteSize::mib(512));
    }

    #[test]
    fn bad_settings_are_refused_with_a_reason() {
        let err = args(&["--max-concurrent", "0"]).config().unwrap_err();
        assert!(err.to_string().contains("max_concurrent"));
        let err = args(&["--auth-user", "alice"]).config().unwrap_err();
        assert!(err.to_string().contains("NAME:HASH"));
        let err = args(&["--auth-user", "alice:plain"]).config().unwrap_err();
        assert!(err.to_string().contains("argon2"));
        assert!(
            ProxyConfig::from_toml("max_concurent = 3")
                .unwrap_err()
                .contains("unknown field")
        );
    }

    #[test]
    fn enumerated_flags_parse_and_refuse_other_values() {
        let c = args(&["--log-format", "json", "--forwarded-header", "forwarded"])
            .config()
            .unwrap();
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.forwarded_header, ForwardedHeader::Forwarded);
        assert!(Wrapper::try_parse_from(["ferry", "--log-format", "xml"]).is_err());
    }
}
