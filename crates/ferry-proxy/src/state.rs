//! What every request handler shares: the settings, the current access rules
//! (swapped atomically on SIGHUP), the upstream client, the fetch queue, the
//! tunnel limit, the access log and the counters.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use crate::access::{Authenticator, Rules, normalize_host};
use crate::config::ProxyConfig;
use crate::ops::access_log::AccessLog;
use crate::ops::metrics::Metrics;
use crate::upstream::{Admission, Upstream};

pub struct ProxyState {
    pub config: ProxyConfig,
    pub rules: ArcSwap<Rules>,
    pub auth: Option<Arc<Authenticator>>,
    pub upstream: Upstream,
    pub admission: Admission,
    pub tunnels: Arc<Semaphore>,
    /// Tunnels outlive their request; shutdown waits for them here.
    pub tunnel_tasks: TaskTracker,
    pub log: AccessLog,
    pub metrics: Arc<Metrics>,
    /// The HTTP cache; `None` when disabled or when its directory is unusable.
    pub cache: Option<ferry_cache::Cache>,
    /// The addresses actually bound (port 0 resolved).
    pub own_addrs: Vec<SocketAddr>,
    /// `1.1 <pseudonym>`, made once.
    pub via_11: http::HeaderValue,
    /// Leaves for intercepted tunnels; `None` unless `intercept_tls`.
    pub intercept: Option<Arc<crate::intercept::Interception>>,
    /// Recent traffic for the dashboard.
    pub activity: Arc<crate::ops::activity::Activity>,
    pub started: std::time::Instant,
    /// Proves a dashboard action came from a page this proxy served: random
    /// per run, in every form, checked on every POST.
    pub csrf_token: String,
    /// Set on SIGTERM/SIGINT: `/healthz` answers 503 so load balancers take
    /// this node out while it still serves (`drain_period`).
    pub draining: std::sync::atomic::AtomicBool,
}

/// A fresh random token for [`ProxyState::csrf_token`].
pub fn new_csrf_token() -> String {
    use rand_core::RngCore;
    let mut bytes = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl ProxyState {
    /// Adds this proxy's `Via` entry to a message.
    pub fn add_via(&self, headers: &mut http::HeaderMap, version: http::Version) {
        crate::headers::add_via_fast(headers, version, &self.config.via_pseudonym, &self.via_11);
    }

    /// Whether `host:port` names this proxy, so the request is for its own pages
    /// rather than something to forward.
    pub fn is_own_address(&self, host: &str, port: u16) -> bool {
        let mut same_port = self
            .own_addrs
            .iter()
            .filter(|own| own.port() == port)
            .peekable();
        // Most requests are for other ports: skip parsing the host for them.
        if same_port.peek().is_none() {
            return false;
        }
        let host = normalize_host(host);
        let ip: Option<IpAddr> = host.parse().ok();
        same_port.any(|own| match ip {
            Some(ip) => ip == own.ip() || (own.ip().is_unspecified() && ip.is_loopback()),
            None => host == "localhost",
        })
    }
}

#[cfg(test)]
impl ProxyState {
    /// The state of a proxy with `config`, no access log, and `cache` if
    /// given: for tests of the request phases.
    pub fn for_tests_with(
        cache: Option<ferry_cache::Cache>,
        config: ProxyConfig,
    ) -> Arc<ProxyState> {
        use crate::ops::metrics::StateCollector;
        use tokio_util::task::TaskTracker;

        let admission = Admission::new(
            config.max_concurrent,
            config.max_queue,
            config.queue_timeout(),
        );
        let upstream = Upstream::new(
            &[],
            config.connect_timeout(),
            config.response_timeout(),
            Arc::new(crate::access::NetworkPolicy::default()),
            config.max_pooled_upstream,
        )
        .unwrap();
        let activity = crate::ops::activity::Activity::new(admission.stats().clone());
        let metrics = Arc::new(Metrics::new(StateCollector {
            started: std::time::Instant::now(),
            admission: admission.stats().clone(),
            max_concurrent: config.max_concurrent,
            cache: cache.clone(),
            log_dropped: Arc::default(),
            upstream_pool: upstream.pool_cap(),
            name: config.via_pseudonym.clone(),
        }));
        Arc::new(ProxyState {
            rules: ArcSwap::from_pointee(Rules::build(&config).unwrap()),
            auth: None,
            upstream,
            admission,
            tunnels: Arc::new(Semaphore::new(config.max_tunnels)),
            tunnel_tasks: TaskTracker::new(),
            log: AccessLog::discard(),
            metrics,
            cache,
            own_addrs: Vec::new(),
            via_11: http::HeaderValue::from_static("1.1 ferry"),
            intercept: None,
            activity,
            started: std::time::Instant::now(),
            csrf_token: new_csrf_token(),
            draining: std::sync::atomic::AtomicBool::new(false),
            config,
        })
    }
}
