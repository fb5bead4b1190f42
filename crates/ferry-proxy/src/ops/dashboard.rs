//! What the proxy serves when it is addressed itself: a live status page at
//! `/` (refreshed from `/status.json` every second), `/status.json`,
//! Prometheus `/metrics`, `/healthz`, and `/proxy.pac` for browser
//! auto-configuration, and `/ca` (the local CA, `ca_page`). Every figure comes from the metric registry.

use std::collections::BTreeMap;

use http::header::{self, HeaderValue};
use http::{HeaderMap, Response, StatusCode};
use serde::Serialize;

use crate::body::{ProxyBody, full};
use crate::error::{ProxyError, RequestError};
use crate::intercept::passthrough::Passing;
use crate::ops::metrics::{self, Sample};
use crate::pages::{self, STYLE, escape, html_response};
use crate::state::ProxyState;

/// One reading of the registry; the status page and `/status.json` are both
/// made from it.
#[derive(Debug, Serialize)]
pub struct Snapshot {
    pub version: &'static str,
    pub listen: Vec<String>,
    /// Each metric's total over its labels, by short name (`requests` for
    /// `ferry_requests_total`), in the registry's order.
    pub totals: Vec<Total>,
    /// Every sample with its labels.
    pub samples: Vec<Sample>,
    /// Clients and sites whose tunnels pass through for now because the
    /// client kept refusing the proxy's certificate.
    pub auto_passthrough: Vec<Passing>,
}

#[derive(Debug, Serialize)]
pub struct Total {
    pub name: String,
    pub help: String,
    pub value: f64,
}

impl Snapshot {
    pub fn take(state: &ProxyState) -> Snapshot {
        let samples = state.metrics.samples();
        let mut totals: Vec<Total> = Vec::new();
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        for s in &samples {
            let name = short_name(&s.name);
            match index.get(&name) {
                Some(&i) => totals[i].value += s.value,
                None => {
                    index.insert(name.clone(), totals.len());
                    totals.push(Total {
                        name,
                        help: s.help.clone(),
                        value: s.value,
                    });
                }
            }
        }
        Snapshot {
            version: env!("CARGO_PKG_VERSION"),
            listen: state.own_addrs.iter().map(|a| a.to_string()).collect(),
            totals,
            samples,
            auto_passthrough: state
                .intercept
                .as_ref()
                .map(|i| i.passthrough.list(std::time::Instant::now()))
                .unwrap_or_default(),
        }
    }
}

/// `ferry_requests_total{class="2xx"}` → `requests`.
fn short_name(sample: &str) -> String {
    let family = sample.split('{').next().unwrap_or(sample);
    let family = family.strip_prefix("ferry_").unwrap_or(family);
    family.strip_suffix("_total").unwrap_or(family).to_string()
}

pub fn serve(
    state: &ProxyState,
    path: &str,
    headers: &HeaderMap,
) -> Result<Response<ProxyBody>, ProxyError> {
    Ok(match path {
        "/" | "" => page(&Snapshot::take(state)),
        "/status.json" => {
            let json = serde_json::to_string(&Snapshot::take(state)).unwrap_or_default();
            with_type(full(json), "application/json")
        }
        "/healthz" => pages::text(StatusCode::OK, "ok\n"),
        "/metrics" => with_type(full(state.metrics.encode()), metrics::CONTENT_TYPE),
        "/proxy.pac" => with_type(
            full(pac(state, headers)),
            "application/x-ns-proxy-autoconfig",
        ),
        ca if ca == "/ca" || ca.starts_with("/ca/") => {
            return super::ca_page::serve(&state.config.ca_dir_or_default(), ca);
        }
        _ => return Err(RequestError::UnknownPage.into()),
    })
}

fn with_type(body: ProxyBody, content_type: &'static str) -> Response<ProxyBody> {
    let mut resp = Response::new(body);
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Formats a reading without a needless `.0`.
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// The status page: one row per metric (its total), then every labelled
/// sample; a small script refreshes the figures from `/status.json`.
fn page(snapshot: &Snapshot) -> Response<ProxyBody> {
    let mut totals = String::new();
    totals.push_str(&format!(
        "<tr><td>Listening on</td><td><strong id=\"listen\">{}</strong></td></tr>\n",
        escape(&snapshot.listen.join(", "))
    ));
    for t in &snapshot.totals {
        totals.push_str(&format!(
            "<tr><td>{}</td><td><strong id=\"{}\">{}</strong></td></tr>\n",
            escape(&t.help),
            escape(&t.name),
            number(t.value)
        ));
    }
    let mut detail = String::new();
    for s in snapshot.samples.iter().filter(|s| s.name.contains('{')) {
        detail.push_str(&format!(
            "<tr><td><code>{name}</code></td><td id=\"{name}\">{}</td></tr>\n",
            number(s.value),
            name = escape(&s.name),
        ));
    }
    let mut passing = String::new();
    if !snapshot.auto_passthrough.is_empty() {
        passing.push_str(
            "<h2>Not intercepted for now</h2>\n<p>These clients kept refusing the \
proxy's certificate for these sites, so their tunnels pass through untouched \
until the time is up.</p>\n<table>\n",
        );
        for p in &snapshot.auto_passthrough {
            passing.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{} s left</td></tr>\n",
                escape(&p.host),
                p.client,
                p.seconds_left
            ));
        }
        passing.push_str("</table>\n");
    }
    let html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Ferry proxy</title>\
<style>{STYLE}</style></head><body>\n<h1>Ferry proxy</h1>\n<p>This is a caching HTTP proxy. \
Point your browser (or <a href=\"/proxy.pac\">/proxy.pac</a>) or <code>curl -x</code> at it.</p>\n\
<table>\n{totals}</table>\n{passing}<h2>By label</h2>\n<table>\n{detail}</table>\n\
<footer>ferry {version} — <a href=\"/status.json\">status.json</a> · \
<a href=\"/metrics\">metrics</a> · <a href=\"/healthz\">healthz</a> · \
<a href=\"/ca\">CA certificate</a></footer>\n\
<script>\nfunction show(id, v) {{ const el = document.getElementById(id); if (el) el.textContent = v; }}\n\
async function refresh() {{\n  try {{\n    const s = await (await fetch('/status.json')).json();\n\
    show('listen', s.listen.join(', '));\n\
    for (const t of s.totals) show(t.name, t.value);\n\
    for (const x of s.samples) show(x.name, x.value);\n  }} catch (e) {{}}\n}}\n\
setInterval(refresh, 1000);\n</script>\n</body></html>\n",
        version = snapshot.version,
    );
    html_response(StatusCode::OK, html)
}

/// A PAC file sending everything through this proxy, at the address the
/// browser used to fetch the PAC (so it works from other machines too). No
/// DIRECT fallback: if the proxy is down, traffic must not silently bypass it.
fn pac(state: &ProxyState, headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        })
        .map(str::to_string)
        .or_else(|| state.own_addrs.first().map(|a| a.to_string()))
        .unwrap_or_else(|| "127.0.0.1:3128".into());
    format!("function FindProxyForURL(url, host) {{\n  return \"PROXY {host}\";\n}}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_drop_prefix_suffix_and_labels() {
        assert_eq!(
            short_name("ferry_requests_total{class=\"2xx\"}"),
            "requests"
        );
        assert_eq!(short_name("ferry_fetches_in_flight"), "fetches_in_flight");
        assert_eq!(short_name("ferry_sent_bytes_total"), "sent_bytes");
    }

    #[test]
    fn numbers_read_plainly() {
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.5), "0.5");
    }
}
