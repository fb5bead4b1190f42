//! Revalidation (RFC 9111 §4.3): the validators sent upstream, and a stored
//! response updated from the 304 that confirmed it.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Request headers that ask the origin whether the stored response is still
/// current (RFC 9111 §4.3.1).
pub fn validators(stored: &HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::new();
    if let Some(etag) = stored.get(header::ETAG) {
        out.push((header::IF_NONE_MATCH, etag.clone()));
    }
    if let Some(lm) = stored.get(header::LAST_MODIFIED) {
        out.push((header::IF_MODIFIED_SINCE, lm.clone()));
    }
    out
}

/// Headers a 304 must not replace in the stored response (§3.2).
const KEPT_ON_UPDATE: &[&str] = &[
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "content-range",
];

/// Whether a 304 describes the stored response (§4.3.4: a strong validator in
/// the 304 must match the stored one).
pub fn not_modified_matches(stored: &HeaderMap, not_modified: &HeaderMap) -> bool {
    match (stored.get(header::ETAG), not_modified.get(header::ETAG)) {
        (Some(old), Some(new)) => {
            let strip = |v: &HeaderValue| {
                v.as_bytes()
                    .strip_prefix(b"W/")
                    .unwrap_or(v.as_bytes())
                    .to_vec()
            };
            strip(old) == strip(new)
        }
        (None, Some(_)) => false,
        _ => true,
    }
}

/// The stored headers updated with those of a 304 (§3.2). A user's own
/// headers in the 304 (`Set-Cookie`, ...) are not taken: they belong to the
/// client that caused the revalidation only.
pub fn merge_not_modified(stored: &HeaderMap, not_modified: &HeaderMap) -> HeaderMap {
    let mut merged = stored.clone();
    for name in not_modified.keys() {
        if KEPT_ON_UPDATE.contains(&name.as_str()) || super::is_per_user(name) {
            continue;
        }
        merged.remove(name);
        for v in not_modified.get_all(name) {
            merged.append(name.clone(), v.clone());
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_304_updates_stored_headers_but_not_the_body_framing() {
        let mut stored = HeaderMap::new();
        stored.insert("etag", "\"a\"".parse().unwrap());
        stored.insert("content-length", "10".parse().unwrap());
        stored.insert("x-old", "1".parse().unwrap());
        stored.insert("cache-control", "max-age=0".parse().unwrap());
        let mut nm = HeaderMap::new();
        nm.insert("etag", "\"a\"".parse().unwrap());
        nm.insert("content-length", "0".parse().unwrap());
        nm.insert("cache-control", "max-age=60".parse().unwrap());
        assert!(not_modified_matches(&stored, &nm));
        let merged = merge_not_modified(&stored, &nm);
        assert_eq!(merged["content-length"], "10");
        assert_eq!(merged["cache-control"], "max-age=60");
        assert_eq!(merged["x-old"], "1");
        let mut other = HeaderMap::new();
        other.insert("etag", "\"b\"".parse().unwrap());
        assert!(!not_modified_matches(&stored, &other));
    }

    #[test]
    fn a_users_own_headers_in_a_304_are_never_merged() {
        let mut stored = HeaderMap::new();
        stored.insert("etag", "\"a\"".parse().unwrap());
        let mut nm = HeaderMap::new();
        for name in crate::policy::PER_USER_HEADERS {
            nm.append(name, "user-data".parse().unwrap());
        }
        nm.insert("x-new", "1".parse().unwrap());
        let merged = merge_not_modified(&stored, &nm);
        assert_eq!(merged["x-new"], "1");
        for name in crate::policy::PER_USER_HEADERS {
            assert!(!merged.contains_key(&name), "{name}");
        }
    }
}
