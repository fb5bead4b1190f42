//! Live counters of what the proxy has done, read by the status page (and the
//! metrics endpoint). Plain atomics: updating them never blocks a request.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::access_log::AccessRecord;
use crate::admission::AdmissionStats;

#[derive(Debug, Default)]
pub struct Metrics {
    pub requests: AtomicU64,
    pub responses_2xx: AtomicU64,
    pub responses_3xx: AtomicU64,
    pub responses_4xx: AtomicU64,
    pub responses_5xx: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    pub tunnels_open: AtomicU64,
    pub tunnels_total: AtomicU64,
    pub connections_open: AtomicU64,
    pub connections_total: AtomicU64,
    pub clients_refused: AtomicU64,
}

impl Metrics {
    pub fn record_response(&self, r: &AccessRecord) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let class = match r.status {
            200..=299 => &self.responses_2xx,
            300..=399 => &self.responses_3xx,
            400..=499 => &self.responses_4xx,
            _ => &self.responses_5xx,
        };
        class.fetch_add(1, Ordering::Relaxed);
        self.bytes_sent.fetch_add(r.bytes, Ordering::Relaxed);
        match r.cache {
            "HIT" => {
                self.cache_hits.fetch_add(1, Ordering::Relaxed);
            }
            "MISS" => {
                self.cache_misses.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

/// Renders the counters in the Prometheus text exposition format.
///
/// Written by hand: the format is a few lines per metric, and the counters are
/// plain atomics shared with the status page; a metrics crate would need them
/// re-registered as its own types.
pub fn render_prometheus(
    m: &Metrics,
    adm: &AdmissionStats,
    max_concurrent: usize,
    cache: Option<ferry_cache::CacheStats>,
) -> String {
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (labels, value) in samples {
            out.push_str(&format!("{name}{labels} {value}\n"));
        }
    };
    metric(
        "ferry_requests_total",
        "counter",
        "Requests answered, by status class.",
        &[
            ("{class=\"2xx\"}", load(&m.responses_2xx)),
            ("{class=\"3xx\"}", load(&m.responses_3xx)),
            ("{class=\"4xx\"}", load(&m.responses_4xx)),
            ("{class=\"5xx\"}", load(&m.responses_5xx)),
        ],
    );
    metric(
        "ferry_sent_bytes_total",
        "counter",
        "Body bytes sent to clients.",
        &[("", load(&m.bytes_sent))],
    );
    metric(
        "ferry_cache_requests_total",
        "counter",
        "Requests by cache result.",
        &[
            ("{result=\"hit\"}", load(&m.cache_hits)),
            ("{result=\"miss\"}", load(&m.cache_misses)),
        ],
    );
    metric(
        "ferry_fetches_in_flight",
        "gauge",
        "Origin fetches holding a slot.",
        &[("", adm.in_flight.load(Ordering::SeqCst) as u64)],
    );
    metric(
        "ferry_fetches_queued",
        "gauge",
        "Requests waiting for a fetch slot.",
        &[("", adm.queued.load(Ordering::SeqCst) as u64)],
    );
    metric(
        "ferry_fetch_slots",
        "gauge",
        "Fetch slots (max_concurrent).",
        &[("", max_concurrent as u64)],
    );
    metric(
        "ferry_fetches_rejected_total",
        "counter",
        "Requests refused because the queue was full or the wait too long.",
        &[("", adm.rejected.load(Ordering::Relaxed))],
    );
    metric(
        "ferry_tunnels_open",
        "gauge",
        "CONNECT tunnels open.",
        &[("", load(&m.tunnels_open))],
    );
    metric(
        "ferry_tunnels_total",
        "counter",
        "CONNECT tunnels opened.",
        &[("", load(&m.tunnels_total))],
    );
    metric(
        "ferry_connections_open",
        "gauge",
        "Client connections open.",
        &[("", load(&m.connections_open))],
    );
    metric(
        "ferry_connections_total",
        "counter",
        "Client connections accepted.",
        &[("", load(&m.connections_total))],
    );
    if let Some(c) = cache {
        metric(
            "ferry_cache_objects",
            "gauge",
            "Objects stored on disk.",
            &[("", c.entries as u64)],
        );
        metric(
            "ferry_cache_bytes",
            "gauge",
            "Bytes stored on disk.",
            &[("", c.bytes)],
        );
        metric(
            "ferry_cache_max_bytes",
            "gauge",
            "The cache size bound.",
            &[("", c.max_bytes)],
        );
        metric(
            "ferry_cache_memory_bytes",
            "gauge",
            "Bytes in the memory tier.",
            &[("", c.memory_bytes)],
        );
        metric(
            "ferry_cache_stores_total",
            "counter",
            "Responses stored.",
            &[("", c.stores)],
        );
        metric(
            "ferry_cache_evictions_total",
            "counter",
            "Objects evicted.",
            &[("", c.evictions)],
        );
        metric(
            "ferry_cache_corrupt_total",
            "counter",
            "Damaged objects found and removed.",
            &[("", c.corrupt_removed)],
        );
    }
    metric(
        "ferry_clients_refused_total",
        "counter",
        "Connections from client addresses outside allow_clients.",
        &[("", load(&m.clients_refused))],
    );
    out
}
