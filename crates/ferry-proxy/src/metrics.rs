//! Live counters of what the proxy has done, read by the status page (and the
//! metrics endpoint). Plain atomics: updating them never blocks a request.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::access_log::AccessRecord;

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
