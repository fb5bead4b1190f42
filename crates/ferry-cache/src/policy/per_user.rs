//! The headers that belong to the one user whose request produced them
//! (`Set-Cookie` and kin): kept out of the cache by storing and by the 304
//! refresh alike, from this one list.

use std::borrow::Cow;

use http::header::{self, HeaderMap, HeaderName};

/// Headers that belong to the one user whose request produced them. The one
/// rule: they go back to that client and are never stored, whether they come
/// with a response that is stored or with the 304 that refreshes one.
pub const PER_USER_HEADERS: [HeaderName; 4] = [
    header::SET_COOKIE,
    HeaderName::from_static("set-cookie2"),
    HeaderName::from_static("authentication-info"),
    HeaderName::from_static("proxy-authentication-info"),
];

pub fn is_per_user(name: &HeaderName) -> bool {
    PER_USER_HEADERS.contains(name)
}

/// `headers` without the per-user ones (copied only when there are some).
pub fn without_per_user(headers: &HeaderMap) -> Cow<'_, HeaderMap> {
    if PER_USER_HEADERS.iter().any(|n| headers.contains_key(n)) {
        let mut kept = headers.clone();
        for name in &PER_USER_HEADERS {
            kept.remove(name);
        }
        Cow::Owned(kept)
    } else {
        Cow::Borrowed(headers)
    }
}
