//! The proxy's configuration: defaults, the TOML file, and flags layered on top
//! (flags override the file, the file overrides the defaults).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytesize::ByteSize;
use ipnet::IpNet;
use serde::Deserialize;

use crate::access_log::LogFormat;
use crate::cli::ProxyArgs;

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

/// Whether (and how) the origin is told the client's address. Off by default:
/// hiding the client is one of the proxy's promises.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    #[default]
    None,
    XForwardedFor,
    Forwarded,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    pub name: String,
    /// An argon2 PHC string, as printed by `ferry hash-password`.
    pub password_hash: String,
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

impl Default for CacheSection {
    fn default() -> Self {
        CacheSection {
            enabled: true,
            dir: None,
            size: ByteSize::gib(1),
            max_object_size: ByteSize::mib(64),
            memory_size: ByteSize::mib(64),
            heuristic_max: 86400,
        }
    }
}

impl CacheSection {
    /// The configured directory, else the platform cache dir (`~/.cache/ferry`).
    pub fn dir_or_default(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| {
            dirs::cache_dir()
                .unwrap_or_else(|| PathBuf::from(".cache"))
                .join("ferry")
        })
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
    pub connect_ports: Vec<u16>,
    pub allow_clients: Vec<IpNet>,
    pub deny_domains: Vec<String>,
    pub allow_domains: Vec<String>,
    pub deny_lists: Vec<PathBuf>,
    pub allow_lists: Vec<PathBuf>,
    pub auth_realm: String,
    pub users: Vec<UserEntry>,
    pub upstream_ca: Vec<PathBuf>,
    pub connect_timeout: u64,
    pub response_timeout: u64,
    pub header_timeout: u64,
    pub shutdown_timeout: u64,
    pub tunnel_idle_timeout: u64,
    pub access_log: String,
    pub log_format: LogFormat,
    pub via_pseudonym: String,
    pub forwarded_header: ForwardedHeader,
    pub cache: CacheSection,
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
            connect_ports: vec![443],
            allow_clients: vec![
                "127.0.0.0/8".parse().unwrap_or_else(|_| IpNet::default()),
                "::1/128".parse().unwrap_or_else(|_| IpNet::default()),
            ],
            deny_domains: Vec::new(),
            allow_domains: Vec::new(),
            deny_lists: Vec::new(),
            allow_lists: Vec::new(),
            auth_realm: "ferry".into(),
            users: Vec::new(),
            upstream_ca: Vec::new(),
            connect_timeout: 10,
            response_timeout: 60,
            header_timeout: 30,
            shutdown_timeout: 30,
            tunnel_idle_timeout: 600,
            access_log: "-".into(),
            log_format: LogFormat::Common,
            via_pseudonym: "ferry".into(),
            forwarded_header: ForwardedHeader::None,
            cache: CacheSection::default(),
        }
    }
}

impl ProxyConfig {
    /// Defaults, then the `--config` file if given, then the flags.
    pub fn load(args: &ProxyArgs) -> Result<ProxyConfig, ConfigError> {
        let mut config = match &args.config {
            Some(path) => Self::from_file(path)?,
            None => ProxyConfig::default(),
        };
        config.apply_flags(args)?;
        config.validate()?;
        Ok(config)
    }

    pub fn from_file(path: &Path) -> Result<ProxyConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })
    }

    pub fn from_toml(text: &str) -> Result<ProxyConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    fn apply_flags(&mut self, a: &ProxyArgs) -> Result<(), ConfigError> {
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
        set_list(&mut self.listen, &a.listen);
        set(&mut self.max_concurrent, &a.max_concurrent);
        set(&mut self.max_queue, &a.max_queue);
        set(&mut self.queue_timeout, &a.queue_timeout);
        set(&mut self.workers, &a.workers);
        set(&mut self.max_tunnels, &a.max_tunnels);
        set_list(&mut self.connect_ports, &a.connect_port);
        set_list(&mut self.allow_clients, &a.allow_client);
        set_list(&mut self.deny_domains, &a.deny_domain);
        set_list(&mut self.allow_domains, &a.allow_domain);
        set_list(&mut self.deny_lists, &a.deny_list);
        set_list(&mut self.allow_lists, &a.allow_list);
        if !a.auth_user.is_empty() {
            self.users = a
                .auth_user
                .iter()
                .map(|spec| parse_user(spec))
                .collect::<Result<_, _>>()?;
        }
        set(&mut self.auth_realm, &a.auth_realm);
        set_list(&mut self.upstream_ca, &a.upstream_ca);
        set(&mut self.connect_timeout, &a.connect_timeout);
        set(&mut self.response_timeout, &a.response_timeout);
        set(&mut self.header_timeout, &a.header_timeout);
        set(&mut self.shutdown_timeout, &a.shutdown_timeout);
        set(&mut self.tunnel_idle_timeout, &a.tunnel_idle_timeout);
        set(&mut self.access_log, &a.access_log);
        set(&mut self.log_format, &a.log_format);
        set(&mut self.via_pseudonym, &a.via_pseudonym);
        set(&mut self.forwarded_header, &a.forwarded_header);
        if a.cache_dir.is_some() {
            self.cache.dir = a.cache_dir.clone();
        }
        if a.no_cache {
            self.cache.enabled = false;
        }
        set(&mut self.cache.size, &a.cache_size);
        set(&mut self.cache.max_object_size, &a.max_object_size);
        set(&mut self.cache.memory_size, &a.memory_cache_size);
        set(&mut self.cache.heuristic_max, &a.heuristic_max);
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if self.listen.is_empty() {
            return invalid("at least one listen address is needed");
        }
        if self.max_concurrent == 0 {
            return invalid("max_concurrent must be at least 1");
        }
        if self.max_tunnels == 0 {
            return invalid("max_tunnels must be at least 1");
        }
        if self.queue_timeout == 0 || self.connect_timeout == 0 || self.response_timeout == 0 {
            return invalid("timeouts must be at least 1 second");
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
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout)
    }
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout)
    }
    pub fn tunnel_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.tunnel_idle_timeout)
    }
}

fn parse_user(spec: &str) -> Result<UserEntry, ConfigError> {
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
        let c = ProxyConfig::load(&args(&[])).unwrap();
        assert_eq!(c.listen, vec!["127.0.0.1:3128".parse().unwrap()]);
        assert_eq!(c.max_concurrent, 5);
        assert_eq!(c.max_queue, 1024);
        assert_eq!(c.queue_timeout, 60);
        assert_eq!(c.max_tunnels, 256);
        assert_eq!(c.connect_ports, vec![443]);
        assert_eq!(c.allow_clients.len(), 2);
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
        let c = ProxyConfig::load(&args(&["--config", path_s, "--max-concurrent", "3"])).unwrap();
        assert_eq!(c.max_concurrent, 3, "flag wins");
        assert_eq!(c.max_queue, 7, "file wins over default");
        assert_eq!(c.listen, vec!["[::1]:8080".parse().unwrap()]);
        assert_eq!(c.cache.size, ByteSize::mib(512));
    }

    #[test]
    fn bad_settings_are_refused_with_a_reason() {
        let err = ProxyConfig::load(&args(&["--max-concurrent", "0"])).unwrap_err();
        assert!(err.to_string().contains("max_concurrent"));
        let err = ProxyConfig::load(&args(&["--auth-user", "alice"])).unwrap_err();
        assert!(err.to_string().contains("NAME:HASH"));
        let err = ProxyConfig::load(&args(&["--auth-user", "alice:plain"])).unwrap_err();
        assert!(err.to_string().contains("argon2"));
        assert!(
            ProxyConfig::from_toml("max_concurent = 3")
                .unwrap_err()
                .contains("unknown field")
        );
    }

    #[test]
    fn the_example_config_parses() {
        let text = include_str!("../../../ferry.example.toml");
        ProxyConfig::from_toml(text).unwrap();
    }
}
