//! Access control as plain data and pure functions: which clients may use the
//! proxy, which destinations they may reach, and which ports CONNECT may open.
//! The listener swaps in a freshly built [`Rules`] on SIGHUP.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;

use super::refusal::Refusal;
use crate::config::ProxyConfig;
use crate::host::{canonical_ip, normalize_host, parse_ip_literal};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AclError {
    #[error("cannot read list file {path}: {source}")]
    ReadList {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid domain pattern {pattern:?} ({origin}): {reason}")]
    BadPattern {
        pattern: String,
        origin: String,
        reason: &'static str,
    },
}

/// A set of domain patterns with where each came from.
///
/// Hand-written because the matching rule is ours (`example.com` covers its
/// subdomains, `*.example.com` only them) and must stay O(labels) for lists of
/// hundreds of thousands of entries: each suffix of the host is one hash lookup.
#[derive(Debug, Default, Clone)]
pub struct DomainSet {
    /// Patterns matching the domain itself and its subdomains.
    domain_and_subs: HashMap<String, String>,
    /// `*.` patterns: subdomains only.
    subs_only: HashMap<String, String>,
}

impl DomainSet {
    pub fn is_empty(&self) -> bool {
        self.domain_and_subs.is_empty() && self.subs_only.is_empty()
    }

    pub fn len(&self) -> usize {
        self.domain_and_subs.len() + self.subs_only.len()
    }

    pub fn insert(&mut self, pattern: &str, origin: &str) -> Result<(), AclError> {
        let bad = |reason| AclError::BadPattern {
            pattern: pattern.to_string(),
            origin: origin.to_string(),
            reason,
        };
        let p = normalize_host(pattern);
        let (subs_only, name) = match p.strip_prefix("*.") {
            Some(rest) => (true, rest.to_string()),
            None => (false, p),
        };
        if name.is_empty() {
            return Err(bad("empty"));
        }
        if name.contains('*') {
            return Err(bad("'*' is only allowed as a leading '*.'"));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b))
        {
            return Err(bad("only letters, digits, '-', '.', '_' are allowed"));
        }
        let map = if subs_only {
            &mut self.subs_only
        } else {
            &mut self.domain_and_subs
        };
        map.entry(name).or_insert_with(|| origin.to_string());
        Ok(())
    }

    /// The pattern (as written, normalized) and its origin that matches `host`.
    pub fn find(&self, host: &str) -> Option<(String, &str)> {
        let host = normalize_host(host);
        if let Some(origin) = self.domain_and_subs.get(&host) {
            return Some((host, origin));
        }
        // Walk the parent domains: a.b.example.com -> b.example.com -> example.com -> com.
        let mut rest = host.as_str();
        while let Some((_, parent)) = rest.split_once('.') {
            if let Some(origin) = self.domain_and_subs.get(parent) {
                return Some((parent.to_string(), origin));
            }
            if let Some(origin) = self.subs_only.get(parent) {
                return Some((format!("*.{parent}"), origin));
            }
            rest = parent;
        }
        None
    }
}

/// The rules a request is checked against.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub allow_clients: Vec<IpNet>,
    pub admin_clients: Vec<IpNet>,
    pub deny: DomainSet,
    pub allow: DomainSet,
    pub connect_ports: Vec<u16>,
    /// Sites whose CONNECT tunnels are passed through, not intercepted.
    pub no_intercept: DomainSet,
    /// When the list files were read.
    pub loaded_at: Option<std::time::SystemTime>,
}

impl Rules {
    /// Builds the rules from the config, reading the list files now.
    pub fn build(config: &ProxyConfig) -> Result<Rules, AclError> {
        let mut rules = Rules {
            allow_clients: config.allow_clients.clone(),
            admin_clients: config.admin_clients.clone(),
            connect_ports: config.connect_ports.clone(),
            loaded_at: Some(std::time::SystemTime::now()),
            ..Rules::default()
        };
        for p in &config.deny_domains {
            rules.deny.insert(p, "deny-domain")?;
        }
        for p in &config.allow_domains {
            rules.allow.insert(p, "allow-domain")?;
        }
        for path in &config.deny_lists {
            load_list(path, &mut rules.deny)?;
        }
        for path in &config.allow_lists {
            load_list(path, &mut rules.allow)?;
        }
        for p in &config.no_intercept {
            rules.no_intercept.insert(p, "no-intercept")?;
        }
        for path in &config.no_intercept_lists {
            load_list(path, &mut rules.no_intercept)?;
        }
        Ok(rules)
    }

    pub fn check_client(&self, client: IpAddr) -> Result<(), Refusal> {
        let client = canonical_ip(client);
        if self.allow_clients.iter().any(|net| net.contains(&client)) {
            Ok(())
        } else {
            Err(Refusal::ClientNotAllowed { client })
        }
    }

    /// Requests about what is stored (PURGE) are for admin clients only.
    pub fn check_admin(&self, client: IpAddr) -> Result<(), Refusal> {
        let client = canonical_ip(client);
        if self.admin_clients.iter().any(|net| net.contains(&client)) {
            Ok(())
        } else {
            Err(Refusal::NotAdmin { client })
        }
    }

    /// Deny rules win over allow rules; an empty allow list allows everything.
    /// An IP literal is matched in its usual form however it is written
    /// (`2130706433` is `127.0.0.1`).
    pub fn check_destination(&self, host: &str) -> Result<(), Refusal> {
        if self.deny.is_empty() && self.allow.is_empty() {
            return Ok(());
        }
        let literal = parse_ip_literal(host).map(|ip| ip.to_string());
        let host = literal.as_deref().unwrap_or(host);
        if let Some((pattern, origin)) = self.deny.find(host) {
            return Err(Refusal::DomainDenied {
                host: normalize_host(host),
                pattern,
                origin: origin.to_string(),
            });
        }
        if !self.allow.is_empty() && self.allow.find(host).is_none() {
            return Err(Refusal::NotInAllowList {
                host: normalize_host(host),
            });
        }
        Ok(())
    }

    /// Whether a tunnel to `host` may be intercepted (when interception is on).
    pub fn may_intercept(&self, host: &str) -> bool {
        self.no_intercept.find(host).is_none()
    }

    pub fn check_connect_port(&self, port: u16) -> Result<(), Refusal> {
        if self.connect_ports.contains(&port) {
            Ok(())
        } else {
            Err(Refusal::PortNotAllowed { port })
        }
    }
}

/// Host names a hosts file maps that are never meant as block entries.
const HOSTS_FILE_NOISE: &[&str] = &[
    "localhost",
    "localhost.localdomain",
    "local",
    "broadcasthost",
    "0.0.0.0",
    "ip6-localhost",
    "ip6-loopback",
];

/// Reads one list file: a pattern a line, `#` comments, blank lines, and
/// hosts-file lines (`0.0.0.0 ads.example other.example`).
pub fn load_list(path: &Path, into: &mut DomainSet) -> Result<(), AclError> {
    let text = std::fs::read_to_string(path).map_err(|source| AclError::ReadList {
        path: path.to_path_buf(),
        source,
    })?;
    parse_list(&text, &path.display().to_string(), into)
}

pub fn parse_list(text: &str, name: &str, into: &mut DomainSet) -> Result<(), AclError> {
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or_default();
        let origin = format!("{name}:{}", n + 1);
        if first.parse::<IpAddr>().is_ok() && line.contains(char::is_whitespace) {
            for host in words {
                if !HOSTS_FILE_NOISE.contains(&host.to_ascii_lowercase().as_str()) {
                    into.insert(host, &origin)?;
                }
            }
        } else {
            into.insert(first, &origin)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(patterns: &[&str]) -> DomainSet {
        let mut s = DomainSet::default();
        for p in patterns {
            s.insert(p, "test").unwrap();
        }
        s
    }

    #[test]
    fn domain_patterns_match_as_documented() {
        let cases: &[(&str, &str, bool)] = &[
            ("example.com", "example.com", true),
            ("example.com", "www.example.com", true),
            ("example.com", "a.b.example.com", true),
            ("example.com", "EXAMPLE.COM.", true),
            ("example.com", "notexample.com", false),
            ("example.com", "example.com.evil", false),
            ("*.example.com", "example.com", false),
            ("*.example.com", "www.example.com", true),
            ("*.example.com", "a.b.example.com", true),
            ("10.1.2.3", "10.1.2.3", true),
            ("10.1.2.3", "10.1.2.30", false),
        ];
        for (pattern, host, want) in cases {
            assert_eq!(
                set(&[pattern]).find(host).is_some(),
                *want,
                "{pattern} vs {host}"
            );
        }
    }

    #[test]
    fn bad_patterns_are_refused() {
        for p in ["", "*", "a.*.com", "exa mple.com", "ex/ample.com", "*."] {
            assert!(DomainSet::default().insert(p, "t").is_err(), "{p:?}");
        }
    }

    #[test]
    fn deny_wins_and_empty_allow_list_allows_all() {
        let mut rules = Rules::default();
        assert!(rules.check_destination("anything.test").is_ok());
        rules.allow = set(&["example.com"]);
        rules.deny = set(&["ads.example.com"]);
        assert!(rules.check_destination("www.example.com").is_ok());
        assert_eq!(
            rules.check_destination("other.test"),
            Err(Refusal::NotInAllowList {
                host: "other.test".into()
            })
        );
        let refusal = rules.check_destination("x.ads.example.com").unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "x.ads.example.com matches deny rule \"ads.example.com\" (test)"
        );
    }

    #[test]
    fn clients_are_matched_by_network_including_mapped_ipv4() {
        let rules = Rules {
            allow_clients: vec!["127.0.0.1/32".parse().unwrap(), "::1/128".parse().unwrap()],
            ..Rules::default()
        };
        assert!(rules.check_client("127.0.0.1".parse().unwrap()).is_ok());
        assert!(
            rules
                .check_client("::ffff:127.0.0.1".parse().unwrap())
                .is_ok()
        );
        assert!(rules.check_client("::1".parse().unwrap()).is_ok());
        assert!(rules.check_client("127.0.0.2".parse().unwrap()).is_err());
    }

    #[test]
    fn list_files_take_comments_blank_lines_and_hosts_lines() {
        let text = "# ads\n\nads.example  # trailing comment\n0.0.0.0 tracker.example other.example\n127.0.0.1 localhost\n*.cdn.example\n";
        let mut s = DomainSet::default();
        parse_list(text, "deny.txt", &mut s).unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(
            s.find("www.ads.example"),
            Some(("ads.example".to_string(), "deny.txt:3"))
        );
        assert!(s.find("other.example").is_some());
        assert!(s.find("localhost").is_none());
        assert!(s.find("x.cdn.example").is_some());
        assert!(s.find("cdn.example").is_none());
    }

    #[test]
    fn connect_ports() {
        let rules = Rules {
            connect_ports: vec![443],
            ..Rules::default()
        };
        assert!(rules.check_connect_port(443).is_ok());
        assert!(rules.check_connect_port(22).is_err());
    }
}
