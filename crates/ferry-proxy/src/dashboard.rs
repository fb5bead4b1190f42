//! What the proxy serves when it is addressed itself: a live dashboard at `/`
//! (refreshed from `/status.json` every second), `/status.json`, Prometheus
//! `/metrics`, `/healthz`, and `/proxy.pac` for browser auto-configuration.

use std::sync::atomic::Ordering::Relaxed;

use http::header::{self, HeaderValue};
use http::{HeaderMap, Response, StatusCode};
use serde::Serialize;

use crate::body::{ProxyBody, full};
use crate::pages::{self, error_page};
use crate::state::ProxyState;

/// One reading of the proxy's counters; the dashboard's rows and
/// `/status.json` are both made from it.
#[derive(Debug, Serialize)]
pub struct Snapshot {
    pub uptime_secs: u64,
    pub listen: Vec<String>,
    pub fetches_in_flight: usize,
    pub fetches_queued: usize,
    pub max_concurrent: usize,
    pub fetches_rejected: u64,
    pub tunnels_open: u64,
    pub connections_open: u64,
    pub requests: u64,
    pub responses_2xx: u64,
    pub responses_3xx: u64,
    pub responses_4xx: u64,
    pub responses_5xx: u64,
    pub bytes_sent: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    /// `None` when the proxy runs without a cache.
    pub cache: Option<ferry_cache::CacheStats>,
}

impl Snapshot {
    pub fn take(state: &ProxyState) -> Snapshot {
        let adm = state.admission.stats();
        let m = &state.metrics;
        Snapshot {
            uptime_secs: state.started.elapsed().as_secs(),
            listen: state.own_addrs.iter().map(|a| a.to_string()).collect(),
            fetches_in_flight: adm.in_flight.load(Relaxed),
            fetches_queued: adm.queued.load(Relaxed),
            max_concurrent: state.config.max_concurrent,
            fetches_rejected: adm.rejected.load(Relaxed),
            tunnels_open: m.tunnels_open.load(Relaxed),
            connections_open: m.connections_open.load(Relaxed),
            requests: m.requests.load(Relaxed),
            responses_2xx: m.responses_2xx.load(Relaxed),
            responses_3xx: m.responses_3xx.load(Relaxed),
            responses_4xx: m.responses_4xx.load(Relaxed),
            responses_5xx: m.responses_5xx.load(Relaxed),
            bytes_sent: m.bytes_sent.load(Relaxed),
            cache_hits: m.cache_hits.load(Relaxed),
            cache_misses: m.cache_misses.load(Relaxed),
            cache: state.cache.as_ref().map(|c| c.stats()),
        }
    }

    /// (element id, label, value) for the dashboard table.
    fn rows(&self) -> Vec<(&'static str, &'static str, String)> {
        vec![
            ("uptime_secs", "Uptime (s)", self.uptime_secs.to_string()),
            ("listen", "Listening on", self.listen.join(", ")),
            (
                "fetches_in_flight",
                "Origin fetches in flight",
                self.fetches_in_flight.to_string(),
            ),
            (
                "fetches_queued",
                "Requests queued for a fetch slot",
                self.fetches_queued.to_string(),
            ),
            (
                "max_concurrent",
                "Fetch slots (max-concurrent)",
                self.max_concurrent.to_string(),
            ),
            (
                "fetches_rejected",
                "Requests refused by the queue",
                self.fetches_rejected.to_string(),
            ),
            (
                "connections_open",
                "Client connections open",
                self.connections_open.to_string(),
            ),
            (
                "tunnels_open",
                "Tunnels open",
                self.tunnels_open.to_string(),
            ),
            ("requests", "Requests answered", self.requests.to_string()),
            ("cache_hits", "Cache hits", self.cache_hits.to_string()),
            (
                "cache_misses",
                "Cache misses",
                self.cache_misses.to_string(),
            ),
            (
                "responses_5xx",
                "Error responses (5xx)",
                self.responses_5xx.to_string(),
            ),
            ("bytes_sent", "Bytes sent", self.bytes_sent.to_string()),
        ]
    }
}

pub fn serve(state: &ProxyState, path: &str, headers: &HeaderMap) -> Response<ProxyBody> {
    match path {
        "/" | "" => pages::dashboard(&Snapshot::take(state).rows()),
        "/status.json" => {
            let json = serde_json::to_string(&Snapshot::take(state)).unwrap_or_default();
            with_type(full(json), "application/json")
        }
        "/healthz" => pages::text(StatusCode::OK, "ok\n"),
        "/metrics" => with_type(
            full(crate::metrics::render_prometheus(
                &state.metrics,
                state.admission.stats(),
                state.config.max_concurrent,
                state.cache.as_ref().map(|c| c.stats()),
            )),
            "text/plain; version=0.0.4; charset=utf-8",
        ),
        "/proxy.pac" => with_type(
            full(pac(state, headers)),
            "application/x-ns-proxy-autoconfig",
        ),
        _ => error_page(
            StatusCode::NOT_FOUND,
            path,
            "this is Ferry, an HTTP proxy: ask it for absolute URLs (curl -x http://this-proxy URL)",
        ),
    }
}

fn with_type(body: ProxyBody, content_type: &'static str) -> Response<ProxyBody> {
    let mut resp = Response::new(body);
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
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
