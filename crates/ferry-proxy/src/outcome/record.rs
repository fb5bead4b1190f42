//! What the access log and the metrics keep of one request: the
//! [`AccessRecord`], made by the exchange when the response is sent and
//! written out when its body ends.

use std::net::SocketAddr;
use std::time::SystemTime;

use super::cache::CacheOutcome;
use super::failure::Failure;
use super::request::RequestKind;

/// What one request did; turned into one log line by the writer thread, so
/// the request path does no formatting.
#[derive(Debug, Clone)]
pub struct AccessRecord {
    pub time: SystemTime,
    pub client: SocketAddr,
    pub user: Option<String>,
    pub method: http::Method,
    /// The request target as text. A copy, not the `Uri`: that shares the
    /// connection's read buffer, which hyper could then not reuse for the
    /// next request while the record waits for the writer thread.
    pub url: String,
    pub version: &'static str,
    pub status: u16,
    pub bytes: u64,
    /// How long the request took, in microseconds (the log shows ms).
    pub duration_us: u64,
    /// What the cache did; the line shows `HIT`, `MISS` or `-` (and, in
    /// JSON, the outcome's class).
    pub cache: CacheOutcome,
    /// Where the request was routed (own page, tunnel, origin).
    pub kind: RequestKind,
    /// What failed, if the request failed.
    pub error: Option<Failure>,
    /// `User-Agent` and `Referer`, copied only for the JSON format (the
    /// common format has no place for them).
    pub user_agent: Option<String>,
    pub referer: Option<String>,
    /// The operator's cache rule that decided the freshness, if one did.
    pub rule: Option<std::sync::Arc<str>>,
    /// The client's group (`[[groups]]`), if it is in one.
    pub group: Option<std::sync::Arc<str>>,
}

/// The text of a request target as the client sent it, without any
/// `user:password@` (credentials never reach a log or a page), built without
/// the formatting machinery (this runs for every request).
pub fn target_text(uri: &http::Uri) -> String {
    let path = uri.path_and_query().map_or("", |p| p.as_str());
    let Some(authority) = uri.authority() else {
        return if path.is_empty() {
            "/".into()
        } else {
            path.into()
        };
    };
    let scheme = uri.scheme_str().unwrap_or("");
    // A byte scan: the authority is short and usually has no userinfo.
    let full = authority.as_str();
    let host_port = match full.bytes().rposition(|b| b == b'@') {
        Some(at) => &full[at + 1..],
        None => full,
    };
    let mut text = String::with_capacity(scheme.len() + 3 + host_port.len() + path.len());
    if !scheme.is_empty() {
        text.push_str(scheme);
        text.push_str("://");
    }
    text.push_str(host_port);
    text.push_str(path);
    text
}

/// The protocol as the log writes it.
pub fn version_str(v: http::Version) -> &'static str {
    match v {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2",
        http::Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_text_matches_the_uri_display() {
        for target in [
            "http://example.test/a?b=c",
            "https://Example.test:8443/",
            "http://example.test",
            "/healthz?x=1",
            "/",
            "example.test:443",
        ] {
            let uri: http::Uri = target.parse().unwrap();
            assert_eq!(target_text(&uri), uri.to_string(), "{target}");
        }
    }

    #[test]
    fn credentials_in_the_target_are_never_kept() {
        let uri: http::Uri = "http://alice:s3cret@example.test:8080/p?q=1"
            .parse()
            .unwrap();
        assert_eq!(target_text(&uri), "http://example.test:8080/p?q=1");
    }
}
