//! Access control as plain data and pure functions: which clients may use the
//! proxy, which destinations they may reach, and which ports CONNECT may open.
//! The listener swaps in a freshly built [`Rules`] on SIGHUP.

use std::borrow::Cow;
use std::hash::BuildHasher;
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
///
/// Kept compact for subscribed lists of a million entries that all come from
/// the same place: each distinct origin is stored once, and the patterns are
/// kept in a [`PatternTable`] (no allocation per pattern).
#[derive(Default, Clone)]
pub struct DomainSet {
    /// Every distinct origin, in the order first seen.
    origins: Vec<Box<str>>,
    /// Patterns matching the domain itself and its subdomains, with the
    /// index of their origin in `origins`.
    domain_and_subs: PatternTable,
    /// `*.` patterns: subdomains only.
    subs_only: PatternTable,
}

/// How many of the most recently added origins `insert` compares before it
/// stores a new one: lists insert runs of entries with one origin, so the
/// last one almost always matches, and a set built from many one-line
/// origins (`file:LINE`) does not pay a search over all of them.
const RECENT_ORIGINS: usize = 4;

impl DomainSet {
    /// Room for `additional` more patterns (of the `example.com` kind).
    pub fn reserve(&mut self, additional: usize) {
        self.domain_and_subs.reserve(additional);
    }

    /// Gives back room reserved beyond what the patterns need.
    pub fn shrink_to_fit(&mut self) {
        self.origins.shrink_to_fit();
        self.domain_and_subs.shrink_to_fit();
        self.subs_only.shrink_to_fit();
    }

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
        let p = normalized(pattern);
        let (subs_only, name) = match p.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, &*p),
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
        let table = if subs_only {
            &mut self.subs_only
        } else {
            &mut self.domain_and_subs
        };
        let hash = table.hash(name);
        if table.get_hashed(name, hash).is_some() {
            // The first origin of a pattern is the one kept.
            return Ok(());
        }
        let recent = self
            .origins
            .iter()
            .enumerate()
            .rev()
            .take(RECENT_ORIGINS)
            .find(|(_, o)| ***o == *origin);
        let index = match recent {
            Some((i, _)) => i,
            None => {
                self.origins.push(origin.into());
                self.origins.len() - 1
            }
        };
        let index = u32::try_from(index).map_err(|_| bad("too many origins in one set"))?;
        table.insert_new(name, hash, index).map_err(bad)
    }

    /// The pattern (as written, normalized) and its origin that matches `host`.
    pub fn find(&self, host: &str) -> Option<(String, &str)> {
        let host = normalized(host);
        if let Some(i) = self.domain_and_subs.get(&host) {
            return Some((host.into_owned(), self.origin(i)));
        }
        // Walk the parent domains: a.b.example.com -> b.example.com -> example.com -> com.
        let mut rest = &*host;
        while let Some((_, parent)) = rest.split_once('.') {
            if let Some(i) = self.domain_and_subs.get(parent) {
                return Some((parent.to_string(), self.origin(i)));
            }
            if let Some(i) = self.subs_only.get(parent) {
                return Some((format!("*.{parent}"), self.origin(i)));
            }
            rest = parent;
        }
        None
    }

    fn origin(&self, index: u32) -> &str {
        // Every stored index was taken from `origins`, which only grows.
        usize::try_from(index)
            .ok()
            .and_then(|i| self.origins.get(i))
            .map_or("", |o| o)
    }
}

/// Each pattern and its origin, as a map (a set of a million patterns
/// prints them all, as a `HashMap` would).
impl std::fmt::Debug for DomainSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let whole = self
            .domain_and_subs
            .iter()
            .map(|(name, i)| (Cow::Borrowed(name), self.origin(i)));
        let subs = self
            .subs_only
            .iter()
            .map(|(name, i)| (Cow::Owned(format!("*.{name}")), self.origin(i)));
        f.debug_map().entries(whole.chain(subs)).finish()
    }
}

/// `normalize_host`, without copying a host that is already in its usual
/// form (the common case for list entries and lookups).
fn normalized(host: &str) -> Cow<'_, str> {
    let trimmed = host
        .trim()
        .trim_end_matches('.')
        .trim_start_matches('[')
        .trim_end_matches(']');
    if trimmed.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(trimmed.to_ascii_lowercase())
    } else {
        Cow::Borrowed(trimmed)
    }
}

/// Names, each with a `u32` (its origin's index), in a hash table of open
/// addressing (linear probing) over one string of all the names.
///
/// A `HashMap<Box<str>, u32>` costs an allocation per name (48 bytes with
/// glibc for a name of 25 to 40 characters) and a 25-byte bucket; here a
/// name costs its characters, 8 bytes of entry and 5 to 10 bytes of slot:
/// about half, for the lists of a million names. As in `HashMap`, a probe
/// reads a byte of hash a slot (all of them fit in the CPU's cache even
/// for a million names) and looks at a name only when that byte matches.
/// Names are never removed, so probing needs no tombstones.
#[derive(Clone, Default)]
struct PatternTable {
    /// Every name, one after another.
    text: String,
    /// In the order added: where each name ends in `text`, and its value.
    entries: Vec<(u32, u32)>,
    /// A power of two of slots (or none), each 0 if empty, else `0x80` and
    /// the top 7 bits of its name's hash.
    tags: Vec<u8>,
    /// Each slot's index in `entries`.
    indexes: Vec<u32>,
    hasher: std::hash::RandomState,
}

impl PatternTable {
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn hash(&self, name: &str) -> u64 {
        self.hasher.hash_one(name)
    }

    fn get(&self, name: &str) -> Option<u32> {
        if self.is_empty() {
            return None;
        }
        self.get_hashed(name, self.hash(name))
    }

    fn get_hashed(&self, name: &str, hash: u64) -> Option<u32> {
        // No slots: a mask that finds none.
        let mask = self.tags.len().wrapping_sub(1);
        let tag = tag(hash);
        let mut at = hash as usize & mask;
        // Never more than 3/4 full: an empty slot ends every probe.
        loop {
            match *self.tags.get(at)? {
                0 => return None,
                t if t == tag => {
                    let i = *self.indexes.get(at)? as usize;
                    if self.name(i) == name {
                        return self.entries.get(i).map(|&(_, value)| value);
                    }
                }
                _ => {}
            }
            at = (at + 1) & mask;
        }
    }

    /// Adds `name` (hashed to `hash`), which is not in the table yet.
    fn insert_new(&mut self, name: &str, hash: u64, value: u32) -> Result<(), &'static str> {
        const FULL: &str = "too many patterns in one set";
        let index = u32::try_from(self.entries.len()).map_err(|_| FULL)?;
        let end = u32::try_from(self.text.len() + name.len()).map_err(|_| FULL)?;
        self.reserve(1);
        self.text.push_str(name);
        self.entries.push((end, value));
        self.place(hash, index);
        Ok(())
    }

    /// Puts entry `index` in the first empty slot from its hash's.
    fn place(&mut self, hash: u64, index: u32) {
        let mask = self.tags.len().wrapping_sub(1);
        let mut at = hash as usize & mask;
        while let Some(t) = self.tags.get_mut(at) {
            if *t == 0 {
                *t = tag(hash);
                if let Some(slot) = self.indexes.get_mut(at) {
                    *slot = index;
                }
                return;
            }
            at = (at + 1) & mask;
        }
    }

    fn name(&self, i: usize) -> &str {
        let start = match i.checked_sub(1) {
            Some(before) => self.entries.get(before).map_or(0, |&(end, _)| end as usize),
            None => 0,
        };
        let end = self.entries.get(i).map_or(0, |&(end, _)| end as usize);
        self.text.get(start..end).unwrap_or("")
    }

    fn iter(&self) -> impl Iterator<Item = (&str, u32)> {
        self.entries
            .iter()
            .enumerate()
            .map(|(i, &(_, value))| (self.name(i), value))
    }

    /// Room for `additional` more names without growing the slots.
    fn reserve(&mut self, additional: usize) {
        let wanted = self.len().saturating_add(additional);
        if wanted.saturating_mul(4) > self.tags.len().saturating_mul(3) {
            self.entries.reserve(additional);
            self.rebuild(slots_for(wanted));
        }
    }

    fn shrink_to_fit(&mut self) {
        self.text.shrink_to_fit();
        self.entries.shrink_to_fit();
        let fit = slots_for(self.len());
        if fit < self.tags.len() {
            self.rebuild(fit);
        }
    }

    /// Lays the slots out again, `size` of them.
    fn rebuild(&mut self, size: usize) {
        self.tags = vec![0; size];
        self.indexes = vec![0; size];
        for i in 0..self.entries.len() {
            let hash = self.hash(self.name(i));
            // `i` fits: `insert_new` checked it.
            self.place(hash, i as u32);
        }
    }
}

/// A slot's byte for a name of hash `hash`: never 0 (empty).
fn tag(hash: u64) -> u8 {
    0x80 | (hash >> 57) as u8
}

/// Slots for `n` names: a power of two at most 3/4 full (none for none).
fn slots_for(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        (n.saturating_mul(4) / 3 + 1).next_power_of_two().max(8)
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
    fn each_origin_is_kept_once_and_the_first_origin_of_a_pattern_wins() {
        let mut s = DomainSet::default();
        for n in 0..1000 {
            s.insert(&format!("ads-{n}.example"), "list big").unwrap();
        }
        for (p, origin) in [
            ("a.test", "one"),
            ("*.b.test", "two"),
            ("c.test", "one"),
            ("d.test", "two"),
            ("A.TEST", "three"),
        ] {
            s.insert(p, origin).unwrap();
        }
        assert_eq!(s.len(), 1004);
        assert_eq!(s.origins.len(), 3, "{:?}", s.origins);
        assert_eq!(
            s.find("x.ads-7.example"),
            Some(("ads-7.example".to_string(), "list big"))
        );
        assert_eq!(s.find("A.test."), Some(("a.test".to_string(), "one")));
        assert_eq!(s.find("x.b.test"), Some(("*.b.test".to_string(), "two")));
        assert_eq!(s.find("d.test"), Some(("d.test".to_string(), "two")));
        assert_eq!(s.find("b.test"), None);
    }

    #[test]
    fn pattern_table_agrees_with_a_hash_map() {
        use std::collections::HashMap;
        // A fixed pseudo-random sequence of names, with repeats.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for reserved in [0, 10, 5000] {
            let mut table = PatternTable::default();
            let mut map = HashMap::new();
            table.reserve(reserved);
            for value in 0..3000u32 {
                let name = format!("n{}.t{}.example", next() % 2000, next() % 3);
                let hash = table.hash(&name);
                if table.get_hashed(&name, hash).is_none() {
                    table.insert_new(&name, hash, value).unwrap();
                }
                map.entry(name).or_insert(value);
                assert_eq!(table.len(), map.len());
            }
            table.shrink_to_fit();
            assert!(table.tags.len() < 4 * table.len(), "{}", table.tags.len());
            let copy = table.clone();
            for (name, value) in &map {
                assert_eq!(copy.get(name), Some(*value), "{name}");
                assert_eq!(copy.get(&format!("x{name}")), None);
            }
            assert_eq!(copy.iter().count(), map.len());
        }
        let empty = PatternTable::default();
        assert_eq!(empty.get("a.example"), None);
        assert_eq!(empty.get(""), None);
    }

    #[test]
    fn domain_sets_print_their_patterns() {
        let s = set(&["a.example", "*.b.example"]);
        assert_eq!(
            format!("{s:?}"),
            r#"{"a.example": "test", "*.b.example": "test"}"#
        );
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
