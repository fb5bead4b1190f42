//! A group of clients and what its members may reach. Membership is by
//! proxy user first (a user's group wins over the address they come from),
//! then by client network, the first group listed that names it. A member
//! gets its group's domain rules *instead of* the top-level ones (as
//! Pi-hole's groups do: the top level is the group of everyone else); the
//! network rules, CONNECT ports and client addresses stay the proxy's.

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use super::schedule::{LocalMoment, Schedule};
use super::subscriptions::ListSet;
use crate::access::acl::{AclError, DomainSet, load_list};
use crate::access::refusal::Refusal;
use crate::config::{GroupConfig, ListConfig};
use crate::host::{canonical_ip, normalize_host, parse_ip_literal};

/// A compiled group.
#[derive(Debug, Clone)]
pub struct Group {
    pub name: Arc<str>,
    pub clients: Vec<IpNet>,
    pub users: Vec<String>,
    deny: DomainSet,
    allow: DomainSet,
    pub deny_lists: Vec<String>,
    pub schedule: Option<Schedule>,
    /// Bytes per second, per client.
    pub rate: Option<u64>,
    /// Bytes per client per local day.
    pub daily_quota: Option<u64>,
}

/// Why a `[[groups]]` entry cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    #[error("group {group:?}: {why}")]
    Invalid { group: String, why: String },
    #[error(transparent)]
    List(#[from] AclError),
}

impl Group {
    /// Checks and compiles `config`, reading its list files now; `lists`
    /// are the names of the `[[lists]]` configured.
    pub fn new(config: &GroupConfig, lists: &[String]) -> Result<Group, GroupError> {
        let name = config.name.trim();
        let invalid = |why: String| GroupError::Invalid {
            group: config.name.clone(),
            why,
        };
        let name_ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
        if !name_ok {
            return Err(invalid(
                "a group's name is 1 to 64 letters, digits, '-', '.', '_'".into(),
            ));
        }
        if config.clients.is_empty() && config.users.is_empty() {
            return Err(invalid(
                "name its members: clients (networks) or users".into(),
            ));
        }
        let mut deny = DomainSet::default();
        let mut allow = DomainSet::default();
        for p in &config.deny {
            deny.insert(p, "deny")
                .map_err(|e| invalid(format!("deny: {e}")))?;
        }
        for p in &config.allow {
            allow
                .insert(p, "allow")
                .map_err(|e| invalid(format!("allow: {e}")))?;
        }
        for path in &config.deny_files {
            load_list(path, &mut deny)?;
        }
        for path in &config.allow_files {
            load_list(path, &mut allow)?;
        }
        for list in &config.deny_lists {
            if !lists.contains(list) {
                return Err(invalid(format!(
                    "deny_lists names {list:?}, which no [[lists]] entry is"
                )));
            }
        }
        let schedule = config
            .schedule
            .as_deref()
            .map(Schedule::parse)
            .transpose()
            .map_err(|e| invalid(format!("schedule: {e}")))?;
        let rate = config
            .rate
            .as_deref()
            .map(parse_rate)
            .transpose()
            .map_err(|e| invalid(format!("rate: {e}")))?;
        let daily_quota = config
            .daily_quota
            .as_deref()
            .map(parse_bytes)
            .transpose()
            .map_err(|e| invalid(format!("daily_quota: {e}")))?;
        Ok(Group {
            name: name.into(),
            clients: config.clients.clone(),
            users: config.users.clone(),
            deny,
            allow,
            deny_lists: config.deny_lists.clone(),
            schedule,
            rate,
            daily_quota,
        })
    }

    /// Whether the deny rules apply at `at` (always without a schedule).
    pub fn denies_at(&self, at: LocalMoment) -> bool {
        self.schedule.as_ref().is_none_or(|s| s.covers(at))
    }

    /// The group's destination rules for `host` at `at`: its deny patterns
    /// and subscribed lists while the schedule says so, then its allow
    /// list if it has one.
    pub fn check_destination(
        &self,
        host: &str,
        lists: &ListSet,
        at: LocalMoment,
    ) -> Result<(), Refusal> {
        // Other spellings of an address are matched as the address; one
        // already written canonically (what std parses) is kept as it is.
        let literal = match host.parse::<std::net::Ipv4Addr>() {
            Ok(_) => None,
            Err(_) => parse_ip_literal(host).map(|ip| ip.to_string()),
        };
        let host = literal.as_deref().unwrap_or(host);
        let refused = |pattern: String, origin: String| Refusal::GroupDenied {
            group: self.name.clone(),
            host: normalize_host(host),
            pattern,
            origin,
        };
        let has_deny = !self.deny.is_empty() || !self.deny_lists.is_empty();
        if has_deny && self.denies_at(at) {
            if let Some((pattern, origin)) = self.deny.find(host) {
                return Err(refused(pattern, origin.to_string()));
            }
            for name in &self.deny_lists {
                let listed = lists.domains(name).and_then(|d| d.find(host));
                if let Some((pattern, _)) = listed {
                    return Err(refused(pattern, format!("list {name}")));
                }
            }
        }
        if !self.allow.is_empty() && self.allow.find(host).is_none() {
            return Err(Refusal::NotInGroupAllowList {
                group: self.name.clone(),
                host: normalize_host(host),
            });
        }
        Ok(())
    }

    /// How many deny patterns the group has of its own (for the dashboard).
    pub fn deny_patterns(&self) -> usize {
        self.deny.len()
    }
}

/// Every group, in the order they were configured.
#[derive(Debug, Clone, Default)]
pub struct Groups {
    groups: Vec<Arc<Group>>,
}

impl Groups {
    pub fn build(configs: &[GroupConfig], lists: &[String]) -> Result<Groups, GroupError> {
        let mut groups = Vec::with_capacity(configs.len());
        for config in configs {
            let group = Group::new(config, lists)?;
            if groups.iter().any(|g: &Arc<Group>| g.name == group.name) {
                return Err(GroupError::Invalid {
                    group: config.name.clone(),
                    why: "two groups have this name".into(),
                });
            }
            groups.push(Arc::new(group));
        }
        Ok(Groups { groups })
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Group>> {
        self.groups.iter()
    }

    /// The group of a client at `ip`, signed in as `user` if it is: a
    /// user's group first, else the first group whose networks hold `ip`.
    pub fn group_for(&self, ip: IpAddr, user: Option<&str>) -> Option<&Arc<Group>> {
        if self.groups.is_empty() {
            return None;
        }
        if let Some(user) = user {
            if let Some(g) = self
                .groups
                .iter()
                .find(|g| g.users.iter().any(|u| u == user))
            {
                return Some(g);
            }
        }
        let ip = canonical_ip(ip);
        self.groups
            .iter()
            .find(|g| g.clients.iter().any(|net| net.contains(&ip)))
    }
}

/// Checks the `[[lists]]` entries before anything is fetched: a name the
/// groups and the disk copy can use, no name twice, an http(s) URL and a
/// refresh interval that parses (at least a minute, so a typo cannot turn
/// the proxy into a load generator against the list's host).
pub fn check_lists(lists: &[ListConfig]) -> Result<(), GroupError> {
    let mut seen = std::collections::HashSet::new();
    for list in lists {
        let invalid = |why: String| GroupError::Invalid {
            group: format!("[[lists]] {}", list.name),
            why,
        };
        let name_ok = !list.name.is_empty()
            && list.name.len() <= 64
            && !list.name.starts_with('.')
            && list
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
        if !name_ok {
            return Err(invalid(
                "a list's name is 1 to 64 letters, digits, '-', '.', '_', not starting with '.'"
                    .into(),
            ));
        }
        if !seen.insert(list.name.as_str()) {
            return Err(invalid("two [[lists]] entries have this name".into()));
        }
        let url_ok = list
            .url
            .parse::<http::Uri>()
            .is_ok_and(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some());
        if !url_ok {
            return Err(invalid(format!(
                "url {:?} is not an http:// or https:// URL",
                list.url
            )));
        }
        if let Some(refresh) = &list.refresh {
            let every = humantime::parse_duration(refresh.trim()).map_err(|e| {
                invalid(format!(
                    "refresh {refresh:?} is not a duration ({e}); write e.g. 6h or 1d"
                ))
            })?;
            if every < std::time::Duration::from_secs(60) {
                return Err(invalid(format!(
                    "refresh {refresh:?} is shorter than a minute"
                )));
            }
        }
    }
    Ok(())
}

/// `2MB/s`, `500KiB/s`, `1 MB/s`: bytes per second.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let per_second = text
        .trim()
        .strip_suffix("/s")
        .ok_or_else(|| format!("{text:?} is not a rate; write e.g. 2MB/s or 500KiB/s"))?;
    let bytes = parse_bytes(per_second)?;
    if bytes == 0 {
        return Err("a rate of 0 would stop every transfer".into());
    }
    Ok(bytes)
}

/// `500MB`, `1GiB`, `100 KB`: bytes.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| format!("{text:?} is not a size ({e}); write e.g. 500MB or 1GiB"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(f: impl FnOnce(&mut GroupConfig)) -> Result<Group, GroupError> {
        let mut config = GroupConfig {
            name: "students".into(),
            clients: vec!["10.1.0.0/16".parse().unwrap()],
            ..Default::default()
        };
        f(&mut config);
        Group::new(&config, &["ads".into()])
    }

    #[test]
    fn users_win_over_addresses_and_the_first_network_wins() {
        let groups = Groups::build(
            &[
                GroupConfig {
                    name: "students".into(),
                    clients: vec!["10.1.0.0/16".parse().unwrap()],
                    ..Default::default()
                },
                GroupConfig {
                    name: "staff".into(),
                    clients: vec!["10.0.0.0/8".parse().unwrap()],
                    users: vec!["alice".into()],
                    ..Default::default()
                },
            ],
            &[],
        )
        .unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let name = |g: Option<&Arc<Group>>| g.map(|g| g.name.to_string());
        assert_eq!(
            name(groups.group_for(ip("10.1.2.3"), None)),
            Some("students".into())
        );
        assert_eq!(
            name(groups.group_for(ip("10.1.2.3"), Some("alice"))),
            Some("staff".into())
        );
        assert_eq!(
            name(groups.group_for(ip("10.9.9.9"), Some("bob"))),
            Some("staff".into())
        );
        assert_eq!(
            name(groups.group_for(ip("::ffff:10.1.0.1"), None)),
            Some("students".into())
        );
        assert_eq!(name(groups.group_for(ip("192.0.2.1"), None)), None);
    }

    #[test]
    fn bad_groups_say_what_is_wrong() {
        let err = |f: fn(&mut GroupConfig)| group(f).unwrap_err().to_string();
        assert!(err(|c| c.name = "bad name".into()).contains("name"));
        assert!(err(|c| c.clients.clear()).contains("members"));
        assert!(err(|c| c.deny_lists = vec!["nope".into()]).contains("nope"));
        assert!(err(|c| c.schedule = Some("Mon-Fry 08:00-09:00".into())).contains("schedule"));
        assert!(err(|c| c.rate = Some("fast".into())).contains("rate"));
        assert!(err(|c| c.daily_quota = Some("lots".into())).contains("daily_quota"));
        assert!(err(|c| c.deny = vec!["*bad*".into()]).contains("bad"));
        assert!(err(|c| c.deny = vec!["*bad*".into()]).contains("deny"));
        assert_eq!(parse_rate("2MB/s").unwrap(), 2_000_000);
        assert_eq!(parse_rate("200KiB/s").unwrap(), 204_800);
        assert_eq!(parse_bytes("100 KB").unwrap(), 100_000);
    }

    #[test]
    fn bad_lists_say_what_is_wrong() {
        let list = |name: &str, url: &str, refresh: Option<&str>| ListConfig {
            name: name.into(),
            url: url.into(),
            refresh: refresh.map(Into::into),
        };
        let err = |lists: &[ListConfig]| check_lists(lists).unwrap_err().to_string();
        let good = list("ads", "https://lists.example/hosts.txt", Some("24h"));
        assert!(check_lists(std::slice::from_ref(&good)).is_ok());
        assert!(err(&[list("../x", "https://a.example/", None)]).contains("name"));
        assert!(err(&[list(".hidden", "https://a.example/", None)]).contains("name"));
        assert!(err(&[good.clone(), good.clone()]).contains("two"));
        assert!(err(&[list("a", "file:///etc/passwd", None)]).contains("url"));
        assert!(err(&[list("a", "not a url", None)]).contains("url"));
        assert!(err(&[list("a", "https://a.example/", Some("daily"))]).contains("refresh"));
        assert!(err(&[list("a", "https://a.example/", Some("5s"))]).contains("minute"));
    }
}
