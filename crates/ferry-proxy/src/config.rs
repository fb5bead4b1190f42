//! The proxy's configuration as plain data: its defaults, the TOML file, and
//! the checks every setting must pass. The command line is the binary's
//! business: it starts from [`ProxyConfig::from_file`] (or the defaults),
//! writes its flags over the fields, then calls [`ProxyConfig::validate`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytesize::ByteSize;
use ferry_cache::CacheConfig;
use ipnet::IpNet;
use serde::Deserialize;

use crate::timeouts::rate::MinRate;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid setting: {0}")]
    Invalid(String),
}

/// The access log's line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Common log format plus duration (ms) and cache status.
    #[default]
    Common,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "common" => Ok(LogFormat::Common),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("{other:?} is not one of: common, json")),
        }
    }
}

/// Which certificate authorities upstream TLS trusts, besides the
/// `upstream_ca` files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamRoots {
    /// The operating system's store, as curl, apt and browsers trust.
    #[default]
    System,
    /// The Mozilla roots compiled into Ferry.
    Bundled,
    /// None: only the `upstream_ca` files.
    None,
}

impl std::str::FromStr for UpstreamRoots {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "system" => Ok(UpstreamRoots::System),
            "bundled" => Ok(UpstreamRoots::Bundled),
            "none" => Ok(UpstreamRoots::None),
            other => Err(format!("{other:?} is not one of: system, bundled, none")),
        }
    }
}

/// Whether (and how) the origin is told the client's address. Off by default:
/// hiding the client is one of the proxy's promises.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    #[default]
    None,
    XForwardedFor,
    Forwarded,
}

impl std::str::FromStr for ForwardedHeader {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(ForwardedHeader::None),
            "x-forwarded-for" => Ok(ForwardedHeader::XForwardedFor),
            "forwarded" => Ok(ForwardedHeader::Forwarded),
            other => Err(format!(
                "{other:?} is not one of: none, x-forwarded-for, forwarded"
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    pub name: String,
    /// An argon2 PHC string, as printed by `ferry hash-password`.
    pub password_hash: String,
}

/// One `[[cache_rules]]` entry (or `--cache-rule`), as written: what it
/// is for and what the cache does with it (`crate::cache_rules` checks and
/// compiles it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheRuleConfig {
    /// Named in `Cache-Status` (`detail=rule:NAME`) and the cache browser.
    pub name: String,
    /// A host pattern as in the access lists (`example.com` and its
    /// subdomains, `*.example.com` only them); absent: any host.
    pub host: Option<String>,
    /// A path pattern: `*` within a segment, `**` across them, `?` one
    /// character; absent: any path.
    pub path: Option<String>,
    /// Words the request's `Accept` must contain.
    pub accept: Option<String>,
    /// Words the request's `User-Agent` must contain.
    pub user_agent: Option<String>,
    /// Freshness when the origin gives none (`1h`, `10m`, `7d`).
    pub fresh: Option<String>,
    /// A floor on freshness, whatever gave it.
    pub min_fresh: Option<String>,
    /// A ceiling on freshness, whatever gave it.
    pub max_fresh: Option<String>,
    /// Fresh for a year, never revalidated (versioned and content-addressed files).
    pub immutable: bool,
    /// Answer a fresh copy even when the client asks to reload.
    pub ignore_reload: bool,
    /// Key the cache without the URL's query.
    pub ignore_query: bool,
    /// Key the cache without these query parameters.
    pub drop_query: Vec<String>,
}

impl std::str::FromStr for CacheRuleConfig {
    type Err = String;

    /// `--cache-rule 'name=debs,path=/pool/**,immutable'`: the TOML keys as
    /// `key=value` pairs separated by commas (`drop_query` values by `|`),
    /// the booleans by their name alone.
    fn from_str(spec: &str) -> Result<CacheRuleConfig, String> {
        let mut rule = CacheRuleConfig::default();
        for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (key, value) = match item.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim().to_string())),
                None => (item, None),
            };
            let need = || {
                value
                    .clone()
                    .ok_or(format!("--cache-rule: {key} needs a value ({key}=...)"))
            };
            match key {
                "name" => rule.name = need()?,
                "host" => rule.host = Some(need()?),
                "path" => rule.path = Some(need()?),
                "accept" => rule.accept = Some(need()?),
                "user_agent" => rule.user_agent = Some(need()?),
                "fresh" => rule.fresh = Some(need()?),
                "min_fresh" => rule.min_fresh = Some(need()?),
                "max_fresh" => rule.max_fresh = Some(need()?),
                "immutable" => rule.immutable = value.as_deref().is_none_or(|v| v == "true"),
                "ignore_reload" => {
                    rule.ignore_reload = value.as_deref().is_none_or(|v| v == "true")
                }
                "ignore_query" => rule.ignore_query = value.as_deref().is_none_or(|v| v == "true"),
                "drop_query" => rule.drop_query = need()?.split('|').map(str::to_string).collect(),
                other => return Err(format!("--cache-rule: unknown key {other:?}")),
            }
        }
        Ok(rule)
    }
}

/// One `[[groups]]` entry: who is in the group and what its members may do
/// (`crate::groups` checks and compiles it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GroupConfig {
    /// Named on refusal pages, in the access log, the metrics and the dashboard.
    pub name: String,
    /// Client networks in the group.
    pub clients: Vec<IpNet>,
    /// Proxy users in the group (a user's group wins over their address's).
    pub users: Vec<String>,
    /// Domain patterns refused (as `deny_domains`), while the schedule says so.
    pub deny: Vec<String>,
    /// If any: the only domain patterns reachable.
    pub allow: Vec<String>,
    /// Local list files refused (the format of `deny_lists`).
    pub deny_files: Vec<PathBuf>,
    /// Local list files allowed (the format of `allow_lists`).
    pub allow_files: Vec<PathBuf>,
    /// Names of `[[lists]]` whose entries are refused.
    pub deny_lists: Vec<String>,
    /// Days and local times when the deny rules apply (`Mon-Fri 08:00-15:00`);
    /// absent: always.
    pub schedule: Option<String>,
    /// Per client of the group, both directions (`2MB/s`).
    pub rate: Option<String>,
    /// Per client of the group, per local day (`500MB`).
    pub daily_quota: Option<String>,
}

/// One `[[lists]]` entry: a block list fetched from `url` every `refresh`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListConfig {
    pub name: String,
    pub url: String,
    /// How often it is fetched again (`24h`).
    pub refresh: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSection {
    pub enabled: bool,
    pub dir: Option<PathBuf>,
    pub size: ByteSize,
    pub max_object_size: ByteSize,
    pub memory_size: ByteSize,
    /// Seconds: cap on heuristic freshness (10% of the time since Last-Modified).
    pub heuristic_max: u64,
}

/// The defaults are the cache's own (`ferry_cache::CacheConfig`).
impl Default for CacheSection {
    fn default() -> Self {
        CacheSection {
            enabled: true,
            dir: None,
            size: ByteSize::b(CacheConfig::DEFAULT_MAX_SIZE),
            max_object_size: ByteSize::b(CacheConfig::DEFAULT_MAX_OBJECT_SIZE),
            memory_size: ByteSize::b(CacheConfig::DEFAULT_MEMORY_SIZE),
            heuristic_max: CacheConfig::DEFAULT_HEURISTIC_MAX.as_secs(),
        }
    }
}

impl CacheSection {
    /// The configured directory, else the platform cache dir (`~/.cache/ferry`).
    pub fn dir_or_default(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(CacheConfig::default_dir)
    }

    /// The cache's settings for this section.
    pub fn cache_config(&self) -> CacheConfig {
        let mut cfg =
            CacheConfig::new(self.dir_or_default()).with_memory_size(self.memory_size.as_u64());
        cfg.max_size = self.size.as_u64();
        cfg.max_object_size = self.max_object_size.as_u64();
        cfg.heuristic_max = Duration::from_secs(self.heuristic_max);
        cfg
    }
}

/// Everything `ferry proxy` runs with. Field names are the TOML keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    pub listen: Vec<SocketAddr>,
    pub max_concurrent: usize,
    pub max_queue: usize,
    pub queue_timeout: u64,
    pub workers: usize,
    pub max_tunnels: usize,
    /// Most client connections open at once; more are closed at accept.
    pub max_connections: usize,
    /// Most connections one client address may hold open.
    pub max_connections_per_client: usize,
    pub connect_ports: Vec<u16>,
    pub allow_clients: Vec<IpNet>,
    /// Clients that may ask about or change what is stored (`PURGE`).
    pub admin_clients: Vec<IpNet>,
    /// Load balancers in front of this proxy: connections from them must
    /// open with a PROXY protocol header naming the client, and only theirs
    /// may.
    pub proxy_protocol_from: Vec<IpNet>,
    /// Destination networks refused after DNS (and for CONNECT).
    pub deny_networks: Vec<IpNet>,
    /// If any, the only destination networks reachable (they also open the
    /// ones refused by default: link-local, this host for remote clients).
    pub allow_networks: Vec<IpNet>,
    pub deny_domains: Vec<String>,
    pub allow_domains: Vec<String>,
    pub deny_lists: Vec<PathBuf>,
    pub allow_lists: Vec<PathBuf>,
    pub auth_realm: String,
    pub users: Vec<UserEntry>,
    pub upstream_ca: Vec<PathBuf>,
    pub upstream_roots: UpstreamRoots,
    /// Most reusable upstream connections, for all origins together.
    pub max_pooled_upstream: usize,
    pub connect_timeout: u64,
    pub response_timeout: u64,
    pub header_timeout: u64,
    /// The minimum transfer rate: at least this many bytes per
    /// `transfer_window` seconds spent waiting on a peer (an origin sending
    /// a body, a client reading one).
    pub min_transfer_bytes: u64,
    pub transfer_window: u64,
    pub shutdown_timeout: u64,
    /// Seconds between the stop signal and closing the listener, during
    /// which `/healthz` answers 503 (for load balancers' health checks).
    pub drain_period: u64,
    pub tunnel_idle_timeout: u64,
    pub access_log: String,
    pub log_format: LogFormat,
    pub via_pseudonym: String,
    /// Host names this proxy is reached by, besides its addresses,
    /// `localhost` and this machine's name: its own pages answer only to
    /// those (a page on another site that re-binds its name to the proxy's
    /// address gets nothing).
    pub public_names: Vec<String>,
    pub forwarded_header: ForwardedHeader,
    pub cache: CacheSection,
    /// The operator's cache rules, tried in order before the presets'.
    pub cache_rules: Vec<CacheRuleConfig>,
    /// Groups of clients with their own rules, schedules, rates and quotas.
    pub groups: Vec<GroupConfig>,
    /// Block lists the proxy fetches and keeps fresh.
    pub lists: Vec<ListConfig>,
    /// The largest subscribed list accepted.
    pub max_list_size: ByteSize,
    /// Who to ask about a refusal, shown on every refusal page.
    pub block_page_contact: Option<String>,
    /// Where the proxy keeps its state (subscribed lists' last good copies,
    /// quota counts); `None`: the platform data dir (`~/.local/share/ferry`).
    pub state_dir: Option<PathBuf>,
    /// The file this configuration was read from, if any: SIGHUP reads
    /// its `[[groups]]` again.
    #[serde(skip)]
    pub config_file: Option<PathBuf>,
    /// Presets that know the package ecosystems (`packages` for all).
    pub cache_presets: Vec<String>,
    /// How long the presets keep index files (which change) fresh when the
    /// origin says nothing.
    pub preset_index_fresh: String,
    /// The local CA's directory (`ferry ca`); `None`: the platform config dir.
    pub ca_dir: Option<PathBuf>,
    /// Terminate the TLS of CONNECT tunnels with leaves from the local CA,
    /// so HTTPS requests are filtered and cached like plain ones.
    pub intercept_tls: bool,
    /// Sites whose tunnels are never intercepted (domain patterns, and list
    /// files in the deny-list format, reloaded on SIGHUP).
    pub no_intercept: Vec<String>,
    pub no_intercept_lists: Vec<PathBuf>,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 3128))],
            max_concurrent: 5,
            max_queue: 1024,
            queue_timeout: 60,
            workers: 0,
            max_tunnels: 256,
            max_connections: 10_000,
            max_connections_per_client: 512,
            connect_ports: vec![443],
            admin_clients: loopback_networks(),
            allow_clients: loopback_networks(),
            proxy_protocol_from: Vec::new(),
            deny_networks: Vec::new(),
            allow_networks: Vec::new(),
            deny_domains: Vec::new(),
            allow_domains: Vec::new(),
            deny_lists: Vec::new(),
            allow_lists: Vec::new(),
            auth_realm: "ferry".into(),
            users: Vec::new(),
            upstream_ca: Vec::new(),
            upstream_roots: UpstreamRoots::System,
            max_pooled_upstream: 512,
            connect_timeout: 10,
            response_timeout: 60,
            header_timeout: 30,
            min_transfer_bytes: 1024,
            transfer_window: 60,
            shutdown_timeout: 30,
            drain_period: 0,
            tunnel_idle_timeout: 600,
            access_log: "-".into(),
            log_format: LogFormat::Common,
            via_pseudonym: "ferry".into(),
            public_names: Vec::new(),
            forwarded_header: ForwardedHeader::None,
            cache: CacheSection::default(),
            cache_rules: Vec::new(),
            cache_presets: Vec::new(),
            groups: Vec::new(),
            lists: Vec::new(),
            max_list_size: ByteSize::mib(64),
            block_page_contact: None,
            state_dir: None,
            config_file: None,
            preset_index_fresh: "1m".into(),
            ca_dir: None,
            intercept_tls: false,
            no_intercept: Vec::new(),
            no_intercept_lists: Vec::new(),
        }
    }
}

impl ProxyConfig {
    /// Whether `peer` is one of the balancers (`proxy_protocol_from`).
    pub fn is_balancer(&self, peer: std::net::IpAddr) -> bool {
        self.proxy_protocol_from
            .iter()
            .any(|net| net.contains(&peer))
    }

    pub fn from_file(path: &Path) -> Result<ProxyConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Self::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })?;
        config.config_file = Some(path.to_path_buf());
        Ok(config)
    }

    pub fn from_toml(text: &str) -> Result<ProxyConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Refuses settings the proxy cannot run with, saying which and why.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if self.listen.is_empty() {
            return invalid("at least one listen address is needed");
        }
        if self.max_concurrent == 0 {
            return invalid("max_concurrent must be at least 1");
        }
        if self.max_connections == 0 || self.max_connections_per_client == 0 {
            return invalid("max_connections and max_connections_per_client must be at least 1");
        }
        if self.max_tunnels == 0 {
            return invalid("max_tunnels must be at least 1");
        }
        if self.queue_timeout == 0 || self.connect_timeout == 0 || self.response_timeout == 0 {
            return invalid("timeouts must be at least 1 second");
        }
        if self.transfer_window == 0 {
            return invalid("transfer_window must be at least 1 second");
        }
        if self.header_timeout == 0 || self.shutdown_timeout == 0 || self.tunnel_idle_timeout == 0 {
            return invalid("timeouts must be at least 1 second");
        }
        let pseudonym_ok = !self.via_pseudonym.is_empty()
            && self
                .via_pseudonym
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
        if !pseudonym_ok {
            return invalid("via_pseudonym must be a non-empty token (letters, digits, - . _ ~)");
        }
        for name in &self.public_names {
            if !crate::host::is_host_name(name) {
                return Err(ConfigError::Invalid(format!(
                    "public_names: {name:?} is not a host name (letters, digits, '-', '_', dot-separated labels)"
                )));
            }
        }
        self.check_group_users(&self.groups)?;
        for user in &self.users {
            if user.name.is_empty() || user.name.contains(':') {
                return invalid("user names must be non-empty and contain no ':'");
            }
            if argon2::PasswordHash::new(&user.password_hash).is_err() {
                return Err(ConfigError::Invalid(format!(
                    "password hash of user {:?} is not an argon2 PHC string (make one with `ferry hash-password`)",
                    user.name
                )));
            }
        }
        Ok(())
    }

    /// Every user a group names is a proxy user (a typo would otherwise
    /// leave that user in no group, silently).
    pub fn check_group_users(&self, groups: &[GroupConfig]) -> Result<(), ConfigError> {
        for group in groups {
            if let Some(user) = group
                .users
                .iter()
                .find(|u| !self.users.iter().any(|known| &known.name == *u))
            {
                return Err(ConfigError::Invalid(format!(
                    "group {:?} names the user {user:?}, who is not a proxy user ([[users]] or --auth-user)",
                    group.name
                )));
            }
        }
        Ok(())
    }

    /// Where the proxy keeps its state: `state_dir`, else the platform data
    /// dir (`~/.local/share/ferry`).
    pub fn state_dir_or_default(&self) -> PathBuf {
        self.state_dir.clone().unwrap_or_else(|| {
            dirs::data_dir()
                .unwrap_or_else(|| PathBuf::from("."))
                .join("ferry")
        })
    }

    /// Worker threads to run: as configured, or one per CPU core.
    pub fn workers(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    pub fn queue_timeout(&self) -> Duration {
        Duration::from_secs(self.queue_timeout)
    }
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout)
    }
    pub fn response_timeout(&self) -> Duration {
        Duration::from_secs(self.response_timeout)
    }
    pub fn min_rate(&self) -> MinRate {
        MinRate {
            min_bytes: self.min_transfer_bytes,
            window: Duration::from_secs(self.transfer_window),
        }
    }
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout)
    }
    pub fn drain_period(&self) -> Duration {
        Duration::from_secs(self.drain_period)
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout)
    }
    pub fn tunnel_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.tunnel_idle_timeout)
    }
}

/// `127.0.0.0/8` and `::1/128`.
fn loopback_networks() -> Vec<IpNet> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect()
}

impl std::str::FromStr for UserEntry {
    type Err = ConfigError;

    /// `NAME:HASH`, as `--auth-user` takes it.
    fn from_str(spec: &str) -> Result<UserEntry, ConfigError> {
        match spec.split_once(':') {
            Some((name, hash)) => Ok(UserEntry {
                name: name.to_string(),
                password_hash: hash.to_string(),
            }),
            None => Err(ConfigError::Invalid(format!(
                "--auth-user wants NAME:HASH, got {spec:?}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_parses() {
        let text = include_str!("../../../ferry.example.toml");
        ProxyConfig::from_toml(text).unwrap();
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(
            ProxyConfig::from_toml("max_concurent = 3")
                .unwrap_err()
                .contains("unknown field")
        );
    }

    #[test]
    fn cache_defaults_are_the_caches_own() {
        let section = CacheSection::default();
        let cfg = section.cache_config();
        assert_eq!(cfg.max_size, CacheConfig::DEFAULT_MAX_SIZE);
        assert_eq!(cfg.max_object_size, CacheConfig::DEFAULT_MAX_OBJECT_SIZE);
        assert_eq!(cfg.memory_size, CacheConfig::DEFAULT_MEMORY_SIZE);
        assert_eq!(cfg.heuristic_max, CacheConfig::DEFAULT_HEURISTIC_MAX);
        assert_eq!(cfg.dir, CacheConfig::default_dir());
    }
}
