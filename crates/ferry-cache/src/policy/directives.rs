//! `Cache-Control` read as the rules need it (RFC 9111 §5.2): directive names
//! case-insensitive, repeated field lines combined, conflicting values made
//! invalid, delta-seconds bounded. Every rule that reads a directive goes
//! through here, so they all agree on what a header says.

use std::collections::HashMap;

use http::header::{self, HeaderMap};

use super::age::MAX_AGE_SECS;

/// Cache-Control directives by lower-cased name (§5.2: names are
/// case-insensitive), values unquoted.
pub type Directives = HashMap<String, Option<String>>;

/// The `Cache-Control` directives of `headers`, all field lines combined. A
/// directive repeated with a different value gets an empty, invalid value
/// (§4.2.1: conflicting freshness information makes a response stale).
pub fn directives(headers: &HeaderMap) -> Directives {
    let mut out: Directives = HashMap::new();
    for value in headers.get_all(header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for part in value.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (name, arg) = match part.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"').to_string())),
                None => (part, None),
            };
            match out.entry(name.to_ascii_lowercase()) {
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(arg);
                }
                std::collections::hash_map::Entry::Occupied(mut seen) => {
                    if *seen.get() != arg {
                        seen.insert(Some(String::new()));
                    }
                }
            }
        }
    }
    out
}

/// A directive's delta-seconds value (§1.2.2): digits only, values beyond
/// [`MAX_AGE_SECS`] taken as that bound; `None` when absent or invalid.
pub(super) fn seconds(d: &Directives, name: &str) -> Option<u64> {
    let value = d.get(name)?.as_deref()?;
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(value.parse::<u64>().unwrap_or(u64::MAX).min(MAX_AGE_SECS))
}
