//! The HTTP caching rules (RFC 9111), as plain functions over headers.
//!
//! The rules are written here rather than taken from the `http-cache-semantics`
//! crate, which this module used to build on: it reads directive names case-
//! sensitively, ignores an invalid `Age`, parses dates only in RFC 2822 form,
//! stores only a fixed list of status codes (no 5xx, even with explicit
//! freshness), gives a shared cache no freshness at all under
//! `proxy-revalidate`, and compares only the first line of a `Vary`-nominated
//! header. Each of those is an RFC 9111 rule, pinned by a test beside it.
//!
//! Beyond RFC 9111 itself, as a shared cache:
//! - a cap on heuristic freshness (§4.2.2 leaves the limit to the cache),
//! - `stale-while-revalidate` and `stale-if-error` (RFC 5861), never with
//!   `must-revalidate`/`proxy-revalidate`/`s-maxage`/`no-cache` (§4.2.4),
//! - HEAD answered from a stored GET,
//! - responses with `Set-Cookie` stored only when marked `public`, and the
//!   per-user headers never stored at all (privacy over hit ratio),
//! - no partial content stored, and nothing stored that could never be reused.
//!
//! Here: the request as the rules see it; storability (§3), freshness (§4.2)
//! and revalidation (§4.3) have a file each. The response a hit gives is
//! built in `crate::conditional` (RFC 9110): `Age`, the origin's `Date` kept
//! (the crate would replace it with an RFC 2822 date, which is not an HTTP
//! date), and the client's own conditional and range requests.

use std::borrow::Cow;
use std::collections::HashMap;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, request, response};

use crate::key::CacheKey;

mod freshness;
mod revalidation;
mod storable;
#[cfg(test)]
pub(crate) mod test_support;

pub use freshness::{
    MAX_AGE_SECS, STALE_IF_UNREACHABLE_MAX, StaleRules, Stored, Verdict, age_header, current_age,
    evaluate, freshness_lifetime, heuristically_cacheable,
};
pub use revalidation::{merge_not_modified, validators};
pub use storable::{check_storable, post_response_reusable, response_forbids_storing};

/// Why a response was not stored; feeds `Cache-Status` and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotStored {
    Method,
    /// The request forbade it (`Cache-Control: no-store` in the request).
    Request,
    Status,
    NoStore,
    Private,
    Authorization,
    VaryStar,
    SetCookie,
    Partial,
    TooBig,
    NotReusable,
    Disabled,
    Io,
}

impl NotStored {
    /// Whether the response itself forbids storing (so later responses for the
    /// same URL likely will too), rather than this request or the cache's state.
    pub fn is_about_the_response(self) -> bool {
        matches!(
            self,
            NotStored::Status
                | NotStored::NoStore
                | NotStored::Private
                | NotStored::VaryStar
                | NotStored::SetCookie
                | NotStored::NotReusable
                | NotStored::TooBig
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NotStored::Method => "method",
            NotStored::Request => "request-no-store",
            NotStored::Status => "status",
            NotStored::NoStore => "no-store",
            NotStored::Private => "private",
            NotStored::Authorization => "authorization",
            NotStored::VaryStar => "vary-star",
            NotStored::SetCookie => "set-cookie",
            NotStored::Partial => "partial",
            NotStored::TooBig => "too-big",
            NotStored::NotReusable => "not-reusable",
            NotStored::Disabled => "disabled",
            NotStored::Io => "io-error",
        }
    }
}

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
fn seconds(d: &Directives, name: &str) -> Option<u64> {
    let value = d.get(name)?.as_deref()?;
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(value.parse::<u64>().unwrap_or(u64::MAX).min(MAX_AGE_SECS))
}

/// The request as the cache evaluates it: GET (a HEAD is answered from a
/// stored GET), the normalized URI, and `Host` taken from it (RFC 9112 §3.2.2
/// makes the URI authoritative for a proxy).
pub fn canonical_request(req: &request::Parts, key: &CacheKey) -> request::Parts {
    let mut parts = http::Request::new(()).into_parts().0;
    parts.method = Method::GET;
    parts.uri = key.uri().clone();
    parts.headers = req.headers.clone();
    if let Some(host) = parts.uri.authority().map(|a| a.as_str().to_string()) {
        if let Ok(v) = HeaderValue::from_str(&host) {
            parts.headers.insert(header::HOST, v);
        }
    }
    parts
}

/// The request kept with a stored response: only what matching needs (the
/// host and the headers named by `Vary`), so clients' cookies and credentials
/// never reach the disk.
pub fn stored_request(canonical: &request::Parts, vary: &[String]) -> request::Parts {
    let mut parts = http::Request::new(()).into_parts().0;
    parts.method = Method::GET;
    parts.uri = canonical.uri.clone();
    for name in std::iter::once("host").chain(vary.iter().map(String::as_str)) {
        if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
            for v in canonical.headers.get_all(&name) {
                parts.headers.append(name.clone(), v.clone());
            }
        }
    }
    parts
}

/// `response` with an `Age` beyond [`MAX_AGE_SECS`] written as that bound
/// (RFC 9111 §5.1), copied only when needed, so a 20-digit `Age` is never
/// stored or passed on.
pub fn with_bounded_age(response: &response::Parts) -> Cow<'_, response::Parts> {
    let too_big = response
        .headers
        .get_all(header::AGE)
        .iter()
        .any(|v| v.len() > 10 || age_header_value(v) > MAX_AGE_SECS);
    if !too_big {
        return Cow::Borrowed(response);
    }
    let mut bounded = http::Response::new(()).into_parts().0;
    bounded.status = response.status;
    bounded.version = response.version;
    bounded.headers = response.headers.clone();
    bounded.headers.remove(header::AGE);
    bounded
        .headers
        .insert(header::AGE, HeaderValue::from(MAX_AGE_SECS));
    Cow::Owned(bounded)
}

fn age_header_value(v: &HeaderValue) -> u64 {
    std::str::from_utf8(v.as_bytes())
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

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

#[cfg(test)]
mod tests {
    use super::test_support::req;
    use super::*;

    #[test]
    fn the_stored_request_keeps_only_host_and_varying_headers() {
        let r = req(&[
            ("cookie", "secret"),
            ("accept-language", "en"),
            ("authorization", "x"),
        ]);
        let kept = stored_request(&r, &["accept-language".to_string()]);
        assert_eq!(kept.headers.len(), 2, "{:?}", kept.headers);
        assert_eq!(kept.headers["host"], "a.test");
        assert_eq!(kept.headers["accept-language"], "en");
    }
}
