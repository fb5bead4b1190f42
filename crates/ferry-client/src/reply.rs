//! Reading what the proxy says about a response: its cache status
//! (`Cache-Status`, RFC 9211, else `X-Cache`), and for an error status, the
//! cause in plain words and whether the proxy itself refused or failed.
//!
//! The proxy answers its own errors with a small HTML page whose `<title>` is
//! `<status> <reason>: <cause>` (and, in Ferry's proxy, an `X-Ferry-Error`
//! header). The header is used when present; otherwise the cause is read from
//! the page, so other proxies' and older versions' pages still give a reason.

use http::{HeaderMap, StatusCode, header};

use crate::error::ClientError;
use crate::{media, title};

/// The cache status to report: `Cache-Status` (all members), else `X-Cache`, else `None`.
pub fn cache_status(headers: &HeaderMap) -> Option<String> {
    let joined = |name: &str| {
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    };
    joined("cache-status").or_else(|| joined("x-cache"))
}

/// The error for a response with a non-success status, given its first bytes.
pub fn error_for(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ClientError {
    let (cause, from_proxy) = cause_of(status, headers, body);
    match status.as_u16() {
        403 if from_proxy => ClientError::Blocked { status, cause },
        407 => ClientError::ProxyAuth { status },
        502..=504 if from_proxy => ClientError::Upstream { status, cause },
        _ => ClientError::Status { status, cause },
    }
}

/// The cause of an error response and whether the proxy wrote the page itself.
pub fn cause_of(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> (String, bool) {
    if let Some(cause) = headers
        .get("x-ferry-error")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        return (cause.to_string(), true);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    // A response that went through to an origin carries the proxy's `Via`;
    // a page the proxy wrote itself does not.
    let forwarded = headers.contains_key(header::VIA);
    if media::is_html(content_type, body) {
        if let Some(page_title) = title::page_title(content_type, body) {
            let code = status.as_str();
            let reason = status.canonical_reason().unwrap_or("");
            if let Some(rest) = page_title.strip_prefix(code) {
                let rest = rest.trim_start();
                let rest = rest.strip_prefix(reason).unwrap_or(rest);
                let rest = rest.trim_start_matches([':', ' ', '-', '—']).trim();
                if !rest.is_empty() {
                    return (shorten(rest), !forwarded);
                }
                return (String::new(), false);
            }
            if page_title != reason {
                return (shorten(&page_title), false);
            }
        }
        return (String::new(), false);
    }
    if content_type
        .and_then(media::essence)
        .is_some_and(|e| e.starts_with("text/"))
    {
        let text = String::from_utf8_lossy(body);
        if let Some(line) = text.lines().map(str::trim).find(|l| !l.is_empty()) {
            return (shorten(line), false);
        }
    }
    (String::new(), false)
}

fn shorten(text: &str) -> String {
    const MAX: usize = 200;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    type Headers = &'static [(&'static str, &'static str)];

    #[test]
    fn cache_statuses() {
        let cases: &[(Headers, Option<&str>)] = &[
            (&[("cache-status", "ferry; hit")], Some("ferry; hit")),
            (
                &[
                    ("cache-status", "ferry; fwd=miss; stored"),
                    ("x-cache", "MISS"),
                ],
                Some("ferry; fwd=miss; stored"),
            ),
            (
                &[
                    ("cache-status", "origin; hit"),
                    ("cache-status", "ferry; fwd=stale"),
                ],
                Some("origin; hit, ferry; fwd=stale"),
            ),
            (&[("x-cache", "HIT")], Some("HIT")),
            (&[], None),
        ];
        for (h, want) in cases {
            assert_eq!(cache_status(&headers(h)).as_deref(), *want, "{h:?}");
        }
    }

    #[test]
    fn causes_and_kinds() {
        let html = &[("content-type", "text/html; charset=utf-8")];
        let page =
            |title: &str| format!("<html><head><title>{title}</title></head><body>x</body></html>");
        struct Case {
            status: u16,
            headers: Headers,
            body: String,
            kind: &'static str,
            message: &'static str,
        }
        let cases = [
            Case {
                status: 403,
                headers: html,
                body: page(
                    "403 Forbidden: blocked.test matches deny rule \"blocked.test\" (deny-domain)",
                ),
                kind: "blocked",
                message: "blocked by the proxy (403 Forbidden): blocked.test matches deny rule \"blocked.test\" (deny-domain)",
            },
            Case {
                status: 403,
                headers: &[("x-ferry-error", "denied by rule x")],
                body: String::new(),
                kind: "blocked",
                message: "blocked by the proxy (403 Forbidden): denied by rule x",
            },
            // An origin's own 403 went through the proxy (Via): not the proxy's refusal.
            Case {
                status: 403,
                headers: &[("content-type", "text/html"), ("via", "1.1 ferry")],
                body: page("403 Forbidden: members only"),
                kind: "status",
                message: "403 Forbidden: members only",
            },
            Case {
                status: 502,
                headers: html,
                body: page("502 Bad Gateway: DNS lookup failed for nowhere.invalid"),
                kind: "upstream",
                message: "the proxy could not fetch the page (502 Bad Gateway): DNS lookup failed for nowhere.invalid",
            },
            Case {
                status: 504,
                headers: &[("x-ferry-error", "origin timed out")],
                body: String::new(),
                kind: "upstream",
                message: "the proxy could not fetch the page (504 Gateway Timeout): origin timed out",
            },
            Case {
                status: 404,
                headers: &[("content-type", "text/html"), ("via", "1.1 ferry")],
                body: page("404 Not Found"),
                kind: "status",
                message: "404 Not Found",
            },
            Case {
                status: 404,
                headers: &[("content-type", "text/html")],
                body: page("Page missing"),
                kind: "status",
                message: "404 Not Found: Page missing",
            },
            Case {
                status: 500,
                headers: &[("content-type", "text/plain")],
                body: "\n  database exploded\nmore".into(),
                kind: "status",
                message: "500 Internal Server Error: database exploded",
            },
            Case {
                status: 410,
                headers: &[("content-type", "image/png")],
                body: "\u{89}PNG".into(),
                kind: "status",
                message: "410 Gone",
            },
            Case {
                status: 407,
                headers: html,
                body: page("407 Proxy Authentication Required: needs a password"),
                kind: "proxy_auth",
                message: "the proxy requires a user name and password (407 Proxy Authentication Required); give them as user:pass@ in the proxy URL",
            },
        ];
        for c in cases {
            let status = StatusCode::from_u16(c.status).unwrap();
            let err = error_for(status, &headers(c.headers), c.body.as_bytes());
            assert_eq!(err.kind(), c.kind, "{}: {err}", c.status);
            assert_eq!(err.to_string(), c.message);
        }
    }
}
