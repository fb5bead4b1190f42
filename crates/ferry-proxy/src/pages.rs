//! The pages the proxy writes itself: error and refusal pages (status, URL and
//! cause in plain words), small text answers, and the HTML helpers the
//! dashboard shares. Every page the proxy writes carries the headers that
//! keep it from being framed, sniffed as another type, or leaking where it
//! was read ([`harden`]).

use std::sync::OnceLock;

use base64::Engine as _;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};

use crate::body::{ProxyBody, full};

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub const PAGE_STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:46em;margin:2em auto;padding:0 1em;color:#222}\
h1{font-size:1.4em}code{background:#f3f3f3;padding:.1em .3em;border-radius:3px}\
table{border-collapse:collapse}td{padding:.2em 1em .2em 0}footer{margin-top:2em;color:#777;font-size:.9em}";

pub fn html_response(status: StatusCode, html: String) -> Response<ProxyBody> {
    let mut resp = Response::new(full(html));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    harden(h, Csp::ErrorPage);
    resp
}

/// Which content security policy a page gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Csp {
    /// A page written for any URL (an error for a site fetched for the
    /// client): it runs nothing and loads nothing; its one inline style is
    /// allowed by its hash.
    ErrorPage,
    /// The proxy's own pages: script, style, images and fetches from the
    /// proxy itself only, forms posted to it only.
    OwnPage,
}

/// Adds the headers every page the proxy writes carries: no framing (a
/// framing page could trick a click on a Purge button), no type sniffing, no
/// `Referer` leaving it for another site, and its content security policy.
///
/// The own pages say `same-origin` rather than `no-referrer`: under
/// `no-referrer` a browser sends `Origin: null` with a form it posts (Fetch
/// standard, "append a request Origin header"), and the proxy could then not
/// tell its own Purge form from another site's. `same-origin` sends
/// nothing to any other site either.
pub fn harden(headers: &mut HeaderMap, csp: Csp) {
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let referrer = match csp {
        Csp::ErrorPage => "no-referrer",
        Csp::OwnPage => "same-origin",
    };
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static(referrer));
    headers.insert(header::CONTENT_SECURITY_POLICY, csp_value(csp));
}

fn csp_value(csp: Csp) -> HeaderValue {
    static VALUES: OnceLock<[HeaderValue; 2]> = OnceLock::new();
    let [error_page, own_page] = VALUES.get_or_init(|| {
        // The one inline style the proxy writes, allowed by its digest rather
        // than by allowing inline style at all.
        let digest = ring::digest::digest(&ring::digest::SHA256, PAGE_STYLE.as_bytes());
        let hash = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
        let value = |text: String| {
            HeaderValue::from_str(&text)
                .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"))
        };
        [
            value(format!(
                "default-src 'none'; style-src 'sha256-{hash}'; script-src 'none'; \
frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
            )),
            value(format!(
                "default-src 'none'; script-src 'self'; style-src 'self' 'sha256-{hash}'; \
img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
            )),
        ]
    });
    match csp {
        Csp::ErrorPage => error_page.clone(),
        Csp::OwnPage => own_page.clone(),
    }
}

/// A small error page: `<title>` carries status and cause so tools (and
/// `ferry get`) can report it without parsing the body. Refusals carry the
/// operator's contact line (`block_page_contact`): the reader learns who
/// decided and whom to ask.
pub fn error_page(
    status: StatusCode,
    url: &str,
    cause: &str,
    contact: Option<&str>,
) -> Response<ProxyBody> {
    let mut resp = html_response(status, error_html(status, url, cause, contact));
    if let Ok(v) = HeaderValue::from_str(&cause_header(cause)) {
        resp.headers_mut().insert("x-ferry-error", v);
    }
    resp
}

fn error_html(status: StatusCode, url: &str, cause: &str, contact: Option<&str>) -> String {
    let reason = status.canonical_reason().unwrap_or("Error");
    let code = status.as_u16();
    let contact = contact
        .map(|c| {
            format!(
                "<p id=\"contact\"><strong>Questions:</strong> {}</p>\n",
                escape(c)
            )
        })
        .unwrap_or_default();
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{code} {reason}: {cause}</title>\
<style>{PAGE_STYLE}</style></head><body>\n<h1>{code} {reason}</h1>\n<p>The proxy could not complete the request for \
<code>{url}</code>.</p>\n<p><strong>Cause:</strong> {cause}</p>\n{contact}<footer>ferry proxy</footer>\n</body></html>\n",
        cause = escape(cause),
        url = escape(url),
    )
}

/// The same page as a whole HTTP/1.1 response, for a connection refused
/// before its request is read (so the URL is not known), closing it.
pub fn raw_error_response(status: StatusCode, cause: &str) -> Vec<u8> {
    let html = error_html(status, "(not read)", cause, None);
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: text/html; charset=utf-8\r\ncache-control: no-store\r\n\
x-ferry-error: {}\r\nx-frame-options: DENY\r\nx-content-type-options: nosniff\r\n\
content-security-policy: {}\r\nconnection: close\r\ncontent-length: {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error"),
        cause_header(cause),
        csp_value(Csp::ErrorPage)
            .to_str()
            .unwrap_or("default-src 'none'"),
        html.len()
    );
    if status == StatusCode::SERVICE_UNAVAILABLE {
        out.push_str("retry-after: 5\r\n");
    }
    out.push_str("\r\n");
    out.push_str(&html);
    out.into_bytes()
}

/// Header values must be visible ASCII; keep the cause readable and safe.
fn cause_header(cause: &str) -> String {
    cause
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(200)
        .collect()
}

/// Answer to a request the proxy itself was addressed with.
pub fn text(status: StatusCode, body: &'static str) -> Response<ProxyBody> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    harden(resp.headers_mut(), Csp::ErrorPage);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn error_page_names_status_url_and_cause() {
        let resp = error_page(
            StatusCode::BAD_GATEWAY,
            "http://x.invalid/<script>",
            "DNS lookup failed",
            None,
        );
        assert_eq!(resp.status(), 502);
        assert_eq!(resp.headers()["x-ferry-error"], "DNS lookup failed");
        assert_eq!(resp.headers()["content-type"], "text/html; charset=utf-8");
    }

    #[test]
    fn a_refusal_page_carries_the_contact_line_escaped() {
        let html = error_html(
            StatusCode::FORBIDDEN,
            "http://games.example/",
            "refused for the group students",
            Some("IT desk <it@school.example>, room 12"),
        );
        assert!(html.contains(
            "<p id=\"contact\"><strong>Questions:</strong> IT desk &lt;it@school.example&gt;, room 12</p>"
        ));
        assert!(!error_html(StatusCode::FORBIDDEN, "u", "c", None).contains("contact"));
    }
}
