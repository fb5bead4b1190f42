//! What a reading of recent traffic looks like: the figures `/api/stats`
//! serves (documented in `docs/api.md`) and the dashboard draws, as
//! [`Activity::report`](super::activity::Activity::report) produces them.
//! Plain serializable data; the field names are the API's.

use serde::Serialize;

/// One row of the recent-requests table.
#[derive(Debug, Clone, Serialize)]
pub struct RecentRequest {
    pub time_ms: u64,
    pub client: String,
    pub method: String,
    pub url: String,
    pub status: u16,
    pub outcome: &'static str,
    pub bytes: u64,
    pub duration_ms: f64,
}

/// The figures of one period (`/api/stats` `summary`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    pub requests: u64,
    pub hits: u64,
    pub request_hit_ratio: f64,
    pub bytes_from_cache: u64,
    pub bytes_from_origin: u64,
    pub byte_hit_ratio: f64,
    /// Bytes served from the cache: what the origins did not have to send.
    pub bytes_saved: u64,
    pub blocked: u64,
    pub errors: u64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summaries {
    pub last_5m: Summary,
    pub since_start: Summary,
}

/// The charts' data: `BUCKETS` values per series, oldest first, the last
/// one the bucket in progress. Rates are per second over the bucket.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    pub interval_seconds: u64,
    /// Unix time of the first bucket's start.
    pub start: u64,
    pub requests_per_second: Vec<(&'static str, Vec<f64>)>,
    pub bytes_from_cache: Vec<f64>,
    pub bytes_from_origin: Vec<f64>,
    pub fetch_slots_in_use: Vec<u64>,
    pub fetch_queue_length: Vec<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostCount {
    pub host: String,
    pub requests: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TopHosts {
    pub by_requests: Vec<HostCount>,
    pub by_bytes: Vec<HostCount>,
}

/// What [`Activity::report`] returns: one consistent reading.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub summary: Summaries,
    pub series: Series,
    pub top_hosts: TopHosts,
    pub top_blocked: Vec<HostCount>,
    /// Newest first.
    pub recent: Vec<RecentRequest>,
}
