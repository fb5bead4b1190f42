//! Revalidation (RFC 9111 §4.3): the validators sent upstream, and a stored
//! response updated from the 304 that confirmed it.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use super::per_user::is_per_user;

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

/// Headers a 304 never changes in the stored response (§3.2): those that
/// describe the stored bytes (framing, coding, range, digest) and the
/// validator the stored copy was confirmed by.
const KEPT_ON_UPDATE: &[&str] = &[
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "content-range",
    "content-md5",
    "etag",
];

/// The stored headers updated with those of a 304 (§3.2), the 304 having
/// answered a request that named the stored copy's own validators. A user's
/// own headers in the 304 (`Set-Cookie`, ...) are not taken: they belong to
/// the client that caused the revalidation only. The stored `Age` goes unless
/// the 304 brings one: it described the old response, and the refreshed one
/// is as old as the 304.
pub fn merge_not_modified(stored: &HeaderMap, not_modified: &HeaderMap) -> HeaderMap {
    let mut merged = stored.clone();
    merged.remove(header::AGE);
    for name in not_modified.keys() {
        if KEPT_ON_UPDATE.contains(&name.as_str()) || is_per_user(name) {
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
        let merged = merge_not_modified(&stored, &nm);
        assert_eq!(merged["content-length"], "10");
        assert_eq!(merged["cache-control"], "max-age=60");
        assert_eq!(merged["x-old"], "1");
        // Neither the digest nor the validator of the stored bytes changes,
        // even when the 304 names others.
        stored.insert("content-md5", "old".parse().unwrap());
        stored.insert("age", "500".parse().unwrap());
        let mut other = HeaderMap::new();
        other.insert("etag", "\"b\"".parse().unwrap());
        other.insert("content-md5", "new".parse().unwrap());
        other.insert("content-type", "text/new".parse().unwrap());
        let merged = merge_not_modified(&stored, &other);
        assert_eq!(merged["etag"], "\"a\"");
        assert_eq!(merged["content-md5"], "old");
        assert_eq!(merged["content-type"], "text/new");
        assert!(
            !merged.contains_key("age"),
            "the old Age does not outlive the refresh"
        );
        other.insert("age", "7".parse().unwrap());
        assert_eq!(merge_not_modified(&stored, &other)["age"], "7");
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
