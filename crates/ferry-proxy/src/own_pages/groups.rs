//! The dashboard's groups and subscribed lists, for admins: each group's
//! members, rules, requests, refusals, bytes and quota use; each list's
//! entries, last success and last error. Every value that came from the
//! config or a list's server is escaped.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use super::parts::bytes_text;
use crate::pages::escape;
use crate::state::ProxyState;

/// The two tables, or nothing when no group or list is configured.
pub fn tables(html: &mut String, state: &ProxyState) {
    let groups = state.groups.load();
    if !groups.is_empty() {
        groups_table(html, state);
    }
    if !state.config.lists.is_empty() {
        lists_table(html, state);
    }
}

fn groups_table(html: &mut String, state: &ProxyState) {
    let groups = state.groups.load();
    let usage = state.quota.snapshot();
    html.push_str(
        "<h2>Groups</h2>\n<table id=\"groups\"><thead><tr><th>group</th><th>members</th>\
<th>rules</th><th class=\"n\">requests</th><th class=\"n\">blocked</th><th class=\"n\">sent</th>\
<th>quota today</th></tr></thead><tbody>\n",
    );
    for group in groups.iter() {
        let mut members: Vec<String> = group.clients.iter().map(|n| n.to_string()).collect();
        members.extend(group.users.iter().map(|u| format!("user {u}")));
        let mut rules = Vec::new();
        if group.deny_patterns() > 0 {
            rules.push(format!("{} deny patterns", group.deny_patterns()));
        }
        if !group.deny_lists.is_empty() {
            rules.push(format!("lists: {}", group.deny_lists.join(", ")));
        }
        if let Some(schedule) = &group.schedule {
            rules.push(format!("deny rules {schedule}"));
        }
        if let Some(rate) = group.rate {
            rules.push(format!("{}/s per client", bytes_text(rate)));
        }
        let counts = state.metrics.group_counts(&group.name);
        let quota = match group.daily_quota {
            None => "–".to_string(),
            Some(limit) => {
                // The clients counted today that are in this group now.
                let mine: Vec<u64> = usage
                    .iter()
                    .filter(|(key, _)| {
                        let (ip, user) = key_parts(key);
                        groups
                            .group_for(ip, user)
                            .is_some_and(|g| g.name == group.name)
                    })
                    .map(|(_, used)| *used)
                    .collect();
                let top = mine.iter().copied().max().unwrap_or(0);
                let spent = mine.iter().filter(|u| **u >= limit).count();
                format!(
                    "{} per client; {} clients counted, most {}, {} spent",
                    bytes_text(limit),
                    mine.len(),
                    bytes_text(top),
                    spent
                )
            }
        };
        let _ = writeln!(
            html,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"n\">{}</td>\
<td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            escape(&group.name),
            escape(&members.join(", ")),
            escape(&rules.join("; ")),
            counts.requests,
            counts.blocked,
            bytes_text(counts.bytes),
            escape(&quota)
        );
    }
    html.push_str("</tbody></table>\n");
}

/// A quota key back as the address or user it counts.
fn key_parts(key: &str) -> (IpAddr, Option<&str>) {
    match key.strip_prefix("user:") {
        Some(user) => (IpAddr::from([0, 0, 0, 0]), Some(user)),
        None => (key.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])), None),
    }
}

fn lists_table(html: &mut String, state: &ProxyState) {
    let lists = state.lists.load();
    html.push_str(
        "<h2>Subscribed lists</h2>\n<table id=\"lists\"><thead><tr><th>list</th><th>url</th>\
<th class=\"n\">entries</th><th class=\"n\">skipped lines</th><th>last success</th><th>last error</th>\
</tr></thead><tbody>\n",
    );
    for list in &state.config.lists {
        let status = lists.status(&list.name);
        let (entries, skipped) = status.map_or((0, 0), |s| (s.entries, s.skipped));
        let success = status.and_then(|s| s.last_success).map_or_else(
            || "<span class=\"note\">never</span>".to_string(),
            |t| escape(&when(t)),
        );
        let error = match status.and_then(|s| s.last_error.as_ref()) {
            Some(e) => format!(
                "{} <span class=\"note\">({})</span>",
                escape(e),
                escape(
                    &status
                        .and_then(|s| s.last_attempt)
                        .map(when)
                        .unwrap_or_default()
                )
            ),
            None => "<span class=\"note\">none</span>".into(),
        };
        let _ = writeln!(
            html,
            "<tr><td><code>{}</code></td><td class=\"url\">{}</td><td class=\"n\">{entries}</td>\
<td class=\"n\">{skipped}</td><td>{success}</td><td>{error}</td></tr>",
            escape(&list.name),
            escape(&list.url),
        );
    }
    html.push_str(
        "</tbody></table>\n<p class=\"note\">A list that fails to fetch or parses to nothing keeps \
its last good copy; SIGHUP fetches every list now.</p>\n",
    );
}

fn when(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    httpdate::fmt_http_date(UNIX_EPOCH + std::time::Duration::from_secs(secs))
}
