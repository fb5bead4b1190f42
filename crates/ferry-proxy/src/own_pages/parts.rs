//! What the proxy's own pages share: the dashboard's style sheet, a typed
//! no-store response, form and query parameters, and byte counts in words.

use http::Response;
use http::header::{self, HeaderValue};

use crate::body::ProxyBody;

/// The dashboard's and the cache browser's style sheet.
pub const DASHBOARD_STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:72em;padding:0 1em;color:#222}\
h1{font-size:1.4em;margin-bottom:.2em}h2{font-size:1.1em;margin-top:1.6em}.sub{color:#666;margin-top:0}\
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(11em,1fr));gap:.6em}\
.tile{border:1px solid #ddd;border-radius:6px;padding:.5em .7em;background:#fcfcfc}\
.tile .label{color:#666;font-size:.85em}.tile .value{font-size:1.6em;font-weight:600}\
.tile .since{color:#777;font-size:.8em}.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(30em,1fr));gap:1em}\
.chart{width:100%;height:auto}.axis,.legend{font-size:10px;fill:#555}\
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(22em,1fr));gap:1em}\
.grid.wide{grid-template-columns:repeat(auto-fill,minmax(34em,1fr))}\
table{border-collapse:collapse;width:100%;font-size:.9em}th,td{text-align:left;padding:.15em .5em;border-bottom:1px solid #eee;vertical-align:top}\
td.n,th.n{text-align:right}td.url{word-break:break-all}code{background:#f3f3f3;padding:.1em .3em;border-radius:3px}\
.note{color:#777}footer{margin-top:2em;color:#777;font-size:.9em}form.inline{display:inline}";

/// A response of `content_type` that no cache keeps.
pub fn with_type(body: ProxyBody, content_type: &'static str) -> Response<ProxyBody> {
    let mut resp = Response::new(body);
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The value of `name` in a query string or form body.
pub fn param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Bytes in a short human form (`1.5 MiB`).
pub fn bytes_text(n: u64) -> String {
    bytesize::ByteSize(n).display().iec().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_parameters_are_decoded() {
        assert_eq!(param("q=a%20b&match=prefix", "q").as_deref(), Some("a b"));
        assert_eq!(param("q=a", "match"), None);
    }
}
