//! `ferry policy test`: what would happen to a URL for a client, and why —
//! the question operators ask most. It reads the same configuration, list
//! files and subscribed lists' last good copies the proxy would, and
//! applies the same rules (client networks, groups by user and address,
//! schedules at a given local time, deny and allow rules, lists, quotas),
//! without a running proxy and without fetching anything.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;

use http::Uri;

use crate::access::acl::{AclError, Rules};
use crate::config::ProxyConfig;
use crate::groups::group::{GroupError, Groups};
use crate::groups::lists::{ListStore, parse_subscribed_list};
use crate::groups::quota::{QuotaBook, client_key};
use crate::groups::schedule::LocalMoment;
use crate::groups::subscriptions::{ListSet, ListStatus};
use crate::host::normalize_host;

/// What to ask about.
#[derive(Debug, Clone)]
pub struct PolicyQuery {
    pub client: IpAddr,
    pub user: Option<String>,
    /// A local day and time (`Tue 09:00`); `None`: now.
    pub at: Option<String>,
    pub url: String,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExplainError {
    #[error("{0:?} is not an http:// or https:// URL")]
    Url(String),
    #[error("--at {0:?}: {1}")]
    At(String, String),
    #[error(transparent)]
    Rules(#[from] AclError),
    #[error(transparent)]
    Groups(#[from] GroupError),
}

/// The answer, in plain lines; `Ok(false)` in the second place when the
/// request would be refused.
pub fn explain(config: &ProxyConfig, q: &PolicyQuery) -> Result<(String, bool), ExplainError> {
    let uri: Uri = q
        .url
        .parse()
        .ok()
        .filter(|u: &Uri| matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some())
        .ok_or_else(|| ExplainError::Url(q.url.clone()))?;
    let host = normalize_host(uri.host().unwrap_or_default());
    let at = match &q.at {
        Some(text) => {
            LocalMoment::parse(text).map_err(|e| ExplainError::At(text.clone(), e.to_string()))?
        }
        None => LocalMoment::now(),
    };
    let rules = Rules::build(config)?;
    crate::groups::group::check_lists(&config.lists)?;
    let list_names: Vec<String> = config.lists.iter().map(|l| l.name.clone()).collect();
    let groups = Groups::build(&config.groups, &list_names)?;
    let mut out = String::new();
    let user = q.user.as_deref();
    let who = match user {
        Some(u) => format!("client {} signed in as {u}", q.client),
        None => format!("client {}", q.client),
    };
    if let Err(refusal) = rules.check_client(q.client) {
        let _ = writeln!(out, "{who}: REFUSED at connect: {refusal}");
        return Ok((out, false));
    }
    let Some(group) = groups.group_for(q.client, user) else {
        let _ = writeln!(out, "{who} is in no group: the top-level rules apply");
        return Ok(match rules.check_destination(&host) {
            Ok(()) => {
                let _ = writeln!(out, "{}: ALLOWED (no top-level rule refuses {host})", q.url);
                (out, true)
            }
            Err(refusal) => {
                let _ = writeln!(out, "{}: REFUSED (403): {refusal}", q.url);
                (out, false)
            }
        });
    };
    let by_user = user.is_some_and(|u| group.users.iter().any(|g| g == u));
    let how = if by_user {
        format!("by its user {}", user.unwrap_or_default())
    } else {
        let net = group
            .clients
            .iter()
            .find(|n| n.contains(&crate::host::canonical_ip(q.client)))
            .map(|n| n.to_string())
            .unwrap_or_default();
        format!("by its network {net}")
    };
    let _ = writeln!(
        out,
        "{who} is in the group {} ({how}); its rules replace the top-level domain rules",
        group.name
    );
    match &group.schedule {
        Some(schedule) => {
            let on = group.denies_at(at);
            let _ = writeln!(
                out,
                "at {at} local time the schedule \"{schedule}\" {}",
                if on {
                    "covers: the group's deny rules are on"
                } else {
                    "does not cover: the group's deny rules are off"
                }
            );
        }
        None => {
            let _ = writeln!(out, "no schedule: the group's deny rules are always on");
        }
    }
    let lists = last_good_lists(config, &group.deny_lists);
    for name in &group.deny_lists {
        match lists.status(name) {
            Some(s) if s.entries > 0 => {
                let _ = writeln!(
                    out,
                    "list {name}: {} entries in its last good copy",
                    s.entries
                );
            }
            _ => {
                let _ = writeln!(
                    out,
                    "list {name}: no good copy yet (it refuses nothing until fetched)"
                );
            }
        }
    }
    let mut allowed = true;
    match group.check_destination(&host, &lists, at) {
        Ok(()) => {
            let _ = writeln!(out, "{}: ALLOWED for the group {}", q.url, group.name);
        }
        Err(refusal) => {
            allowed = false;
            let _ = writeln!(out, "{}: REFUSED (403): {refusal}", q.url);
        }
    }
    if let Some(rate) = group.rate {
        let _ = writeln!(out, "transfers paced to {}/s for this client", human(rate));
    }
    if let Some(quota) = group.daily_quota {
        let book = QuotaBook::peek(&config.state_dir_or_default().join("quota.txt"));
        let used = book.used(&client_key(q.client, user));
        let spent = used >= quota;
        let _ = writeln!(
            out,
            "daily quota {} per client: {} used today{}",
            human(quota),
            human(used),
            if spent {
                ": SPENT, requests are refused (429) until midnight"
            } else {
                ""
            }
        );
        allowed &= !spent;
    }
    Ok((out, allowed))
}

/// The last good copies of `names` as the proxy would start with them.
fn last_good_lists(config: &ProxyConfig, names: &[String]) -> ListSet {
    let store = ListStore::new(config.state_dir_or_default().join("lists"));
    let mut set = ListSet::default();
    for name in names {
        if let Some((bytes, saved)) = store.load(name) {
            if let Ok(parsed) = parse_subscribed_list(&bytes, &format!("list {name}")) {
                set = set.with(
                    name,
                    ListStatus {
                        domains: Arc::new(parsed.domains),
                        entries: parsed.entries,
                        skipped: parsed.skipped,
                        last_success: Some(saved),
                        last_error: None,
                        last_attempt: None,
                    },
                );
            }
        }
    }
    set
}

fn human(bytes: u64) -> String {
    bytesize::ByteSize(bytes).display().si().to_string()
}
