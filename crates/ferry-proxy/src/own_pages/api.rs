//! `/api/stats`: one JSON reading of the proxy for the dashboard's live
//! updates, `ferry top` and scripts (documented in `docs/api.md`). The
//! per-host, per-URL and per-client parts name what other people fetch and
//! what is stored, so they are given to admin clients only (`null` for
//! others).

use std::time::SystemTime;

use serde::Serialize;

use crate::intercept::passthrough::Passing;
use crate::state::ProxyState;
use crate::telemetry::report::{HostCount, RecentRequest, Series, Summaries, TopHosts};
use crate::upstream::ClientQueue;

#[derive(Debug, Serialize)]
pub struct Stats {
    pub version: &'static str,
    pub uptime_seconds: u64,
    pub listen: Vec<String>,
    /// Whether the asking client is an admin client (sees the detail and
    /// may act).
    pub admin: bool,
    pub summary: Summaries,
    pub series: Series,
    pub fetch: Fetch,
    pub connections_open: i64,
    pub cache: Option<CacheFigures>,
    pub top_hosts: Option<TopHosts>,
    pub top_blocked: Option<Vec<HostCount>>,
    pub recent: Option<Vec<RecentRequest>>,
    /// Clients and sites whose tunnels pass through for now because the
    /// client kept refusing the proxy's certificate.
    pub auto_passthrough: Option<Vec<Passing>>,
}

#[derive(Debug, Serialize)]
pub struct Fetch {
    /// `max_concurrent`.
    pub slots: usize,
    pub in_use: usize,
    pub queued: usize,
    /// Per client: slots held and requests waiting (admin only).
    pub clients: Option<Vec<ClientQueue>>,
}

#[derive(Debug, Serialize)]
pub struct CacheFigures {
    pub objects: u64,
    pub bytes: u64,
    pub max_bytes: u64,
    pub memory_bytes: u64,
    pub evictions: u64,
}

impl Stats {
    pub fn take(state: &ProxyState, admin: bool) -> Stats {
        let now = SystemTime::now();
        let report = state.activity.report(now);
        let adm = state.admission.stats();
        Stats {
            version: env!("CARGO_PKG_VERSION"),
            uptime_seconds: state.started.elapsed().as_secs(),
            listen: state.own_addrs.iter().map(|a| a.to_string()).collect(),
            admin,
            summary: report.summary,
            series: report.series,
            fetch: Fetch {
                slots: state.config.max_concurrent,
                in_use: adm.in_flight.load(std::sync::atomic::Ordering::Relaxed),
                queued: adm.queued.load(std::sync::atomic::Ordering::Relaxed),
                clients: admin.then(|| state.admission.clients()),
            },
            connections_open: state.metrics.connections_open.get(),
            cache: state.cache.as_ref().map(|c| {
                let s = c.stats();
                CacheFigures {
                    objects: s.entries as u64,
                    bytes: s.bytes,
                    max_bytes: s.max_bytes,
                    memory_bytes: s.memory_bytes,
                    evictions: s.evictions,
                }
            }),
            top_hosts: admin.then_some(report.top_hosts),
            top_blocked: admin.then_some(report.top_blocked),
            recent: admin.then_some(report.recent),
            auto_passthrough: admin.then(|| {
                state
                    .intercept
                    .as_ref()
                    .map(|i| i.passthrough.list(std::time::Instant::now()))
                    .unwrap_or_default()
            }),
        }
    }
}
