//! The request as the rules see it: the one a lookup is evaluated against,
//! and the part of it kept with a stored response (only what `Vary` matching
//! needs, so clients' cookies and credentials never reach the disk).

use http::header::{self, HeaderName, HeaderValue};
use http::{Method, request};

use crate::key::CacheKey;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::test_support::req;

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
