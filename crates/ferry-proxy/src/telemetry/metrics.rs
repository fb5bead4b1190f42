//! The proxy's one metric registry (`prometheus-client`). Every metric is
//! declared here, once: the counters the request path updates in
//! [`Metrics::new`], and the readings of live state (fetch slots, the cache)
//! in [`StateCollector`]. `/metrics` is the registry's encoding, and the
//! status page and `/status.json` are read back from that same encoding
//! ([`Metrics::samples`]), so a new metric shows up everywhere with no other
//! change.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

use super::histogram::AtomicHistogram;
use crate::outcome::{
    AccessRecord, ByteSource, ErrorSource, Failure, RequestOutcome, RuleKind, UpstreamCause,
};
use crate::upstream::{AdmissionStats, PoolCap};

/// The content type of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = [(&'static str, &'static str); 1];
type Labels2 = [(&'static str, &'static str); 2];

/// Status classes, the `code_class` label.
const CODE_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The metrics the request path updates, and the registry that exposes them
/// with the collected ones. Every update is an atomic add on a value made up
/// front: no lock and no label lookup on the request path.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Indexed by `outcome * CODE_CLASSES.len() + class`.
    requests: Vec<Counter>,
    /// Indexed by [`RequestOutcome::index`].
    durations: Vec<AtomicHistogram>,
    pub origin_fetch: AtomicHistogram,
    sent_bytes: Counter,
    /// Indexed by [`ByteSource::index`].
    response_bytes: Vec<Counter>,
    /// Indexed by [`ErrorSource::index`].
    errors: Vec<Counter>,
    /// Indexed by [`RuleKind::index`].
    blocked: Vec<Counter>,
    /// Indexed by [`UpstreamCause::index`].
    upstream_errors: Vec<Counter>,
    pub connections_open: Gauge,
    pub connections_total: Counter,
    pub clients_refused: Counter,
    pub connections_capped: Counter,
    pub tunnels_open: Gauge,
    pub tunnels_total: Counter,
    pub tunnels_intercepted: Counter,
    pub intercept_refused: Counter,
    pub intercept_auto_passthrough: Counter,
    /// By group and `result` (`served` or `blocked`); made when a group's
    /// first request ends (groups change on SIGHUP), read by the dashboard.
    group_requests: Family<GroupLabels2, Counter>,
    group_bytes: Family<GroupLabels, Counter>,
    /// Each group's counters, found by the group's name (the same `Arc`
    /// every request of the group carries) without hashing labels or
    /// allocating on each request.
    group_counters: std::sync::RwLock<Vec<GroupCounters>>,
}

/// The counters of one group, taken from the families once.
#[derive(Debug, Clone)]
struct GroupCounters {
    name: Arc<str>,
    served: Counter,
    blocked: Counter,
    bytes: Counter,
}

/// Groups change only on SIGHUP; past this many names seen, the families
/// are asked directly.
const MAX_CACHED_GROUPS: usize = 256;

type GroupLabels = [(&'static str, Arc<str>); 1];
type GroupLabels2 = [(&'static str, Arc<str>); 2];

/// One group's counts since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupCounts {
    pub requests: u64,
    pub blocked: u64,
    pub bytes: u64,
}

/// Live state read at each scrape.
#[derive(Debug)]
pub struct StateCollector {
    pub started: Instant,
    pub admission: Arc<AdmissionStats>,
    pub max_concurrent: usize,
    pub cache: Option<ferry_cache::Cache>,
    /// Access-log lines dropped because the log's queue was full.
    pub log_dropped: Arc<std::sync::atomic::AtomicU64>,
    /// Reusable upstream connections.
    pub upstream_pool: Arc<PoolCap>,
    /// The proxy's name (`via_pseudonym`, `ferry-<node>` in a farm), a
    /// label of `ferry_build_info` so a farm's series can be told apart by
    /// node.
    pub name: String,
}

impl Metrics {
    pub fn new(state: StateCollector) -> Metrics {
        let mut registry = Registry::default();
        let build = prometheus_client::metrics::info::Info::new(vec![
            ("version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
            ("name".to_string(), state.name.clone()),
        ]);
        registry.register("ferry_build", "The running build.", build);
        let requests = {
            let family = Family::<Labels2, Counter>::default();
            let counters = RequestOutcome::ALL
                .iter()
                .flat_map(|o| CODE_CLASSES.iter().map(move |c| (o.as_str(), *c)))
                .map(|(o, c)| family.get_or_create_owned(&[("outcome", o), ("code_class", c)]))
                .collect();
            registry.register(
                "ferry_requests",
                "Requests answered, by outcome and status class.",
                family,
            );
            counters
        };
        let durations = {
            let family = Family::<Labels, AtomicHistogram>::new_with_constructor(
                AtomicHistogram::durations as fn() -> AtomicHistogram,
            );
            let histograms = RequestOutcome::ALL
                .iter()
                .map(|o| family.get_or_create_owned(&[("outcome", o.as_str())]))
                .collect();
            registry.register(
                "ferry_request_duration_seconds",
                "Time from a request's arrival to the end of its response, by outcome.",
                family,
            );
            histograms
        };
        let origin_fetch = AtomicHistogram::durations();
        registry.register(
            "ferry_origin_fetch_duration_seconds",
            "Time from sending a request to an origin to its response headers.",
            origin_fetch.clone(),
        );
        let sent_bytes = counter(
            &mut registry,
            "ferry_sent_bytes",
            "Body bytes sent to clients.",
        );
        let response_bytes = labelled(
            &mut registry,
            "ferry_response_bytes",
            "Response body bytes sent to clients, by where they came from.",
            "source",
            &ByteSource::ALL.map(ByteSource::as_str),
        );
        let errors = labelled(
            &mut registry,
            "ferry_errors",
            "Requests that failed, by where the fault lay.",
            "source",
            &ErrorSource::ALL.map(ErrorSource::as_str),
        );
        let blocked = labelled(
            &mut registry,
            "ferry_blocked",
            "Requests refused by the access rules, by the kind of rule.",
            "rule_kind",
            &RuleKind::ALL.map(RuleKind::as_str),
        );
        let upstream_errors = labelled(
            &mut registry,
            "ferry_upstream_errors",
            "Requests whose origin fetch failed, by cause.",
            "cause",
            &UpstreamCause::ALL.map(UpstreamCause::as_str),
        );
        let connections_open = gauge(
            &mut registry,
            "ferry_connections_open",
            "Client connections open.",
        );
        let connections_total = counter(
            &mut registry,
            "ferry_connections",
            "Client connections accepted.",
        );
        let clients_refused = counter(
            &mut registry,
            "ferry_clients_refused",
            "Connections from client addresses outside allow_clients.",
        );
        let connections_capped = counter(
            &mut registry,
            "ferry_connections_capped",
            "Connections closed at accept by max-connections or max-connections-per-client.",
        );
        let tunnels_open = gauge(&mut registry, "ferry_tunnels_open", "CONNECT tunnels open.");
        let tunnels_total = counter(&mut registry, "ferry_tunnels", "CONNECT tunnels opened.");
        let tunnels_intercepted = counter(
            &mut registry,
            "ferry_tunnels_intercepted",
            "CONNECT tunnels whose TLS the proxy terminated (the rest passed through).",
        );
        let intercept_refused = counter(
            &mut registry,
            "ferry_intercept_refused",
            "Intercepted TLS handshakes the client refused (the proxy's certificate not trusted).",
        );
        let intercept_auto_passthrough = counter(
            &mut registry,
            "ferry_intercept_auto_passthrough",
            "Tunnels passed through because their client had refused the proxy's certificate for that site.",
        );
        let group_requests = Family::<GroupLabels2, Counter>::default();
        registry.register(
            "ferry_group_requests",
            "Requests of the clients in each group, served or blocked.",
            group_requests.clone(),
        );
        let group_bytes = Family::<GroupLabels, Counter>::default();
        registry.register(
            "ferry_group_sent_bytes",
            "Body bytes sent to the clients in each group.",
            group_bytes.clone(),
        );
        registry.register_collector(Box::new(state));
        Metrics {
            group_requests,
            group_bytes,
            group_counters: std::sync::RwLock::default(),
            registry,
            requests,
            durations,
            origin_fetch,
            sent_bytes,
            response_bytes,
            errors,
            blocked,
            upstream_errors,
            connections_open,
            connections_total,
            clients_refused,
            connections_capped,
            tunnels_open,
            tunnels_total,
            tunnels_intercepted,
            intercept_refused,
            intercept_auto_passthrough,
        }
    }

    /// Counts one finished request.
    pub fn record_response(&self, r: &AccessRecord) {
        let outcome = RequestOutcome::of(r.kind, r.cache, r.error);
        let class = usize::from(r.status / 100)
            .clamp(1, CODE_CLASSES.len())
            .saturating_sub(1);
        if let Some(c) = self
            .requests
            .get(outcome.index() * CODE_CLASSES.len() + class)
        {
            c.inc();
        }
        if let Some(h) = self.durations.get(outcome.index()) {
            h.observe_us(r.duration_us);
        }
        self.sent_bytes.inc_by(r.bytes);
        if let Some(group) = &r.group {
            let counters = self.group_counters(group);
            if matches!(r.error, Some(Failure::Policy(_))) {
                counters.blocked.inc();
            } else {
                counters.served.inc();
            }
            counters.bytes.inc_by(r.bytes);
        }
        if let Some(c) = outcome
            .byte_source()
            .and_then(|s| self.response_bytes.get(s.index()))
        {
            c.inc_by(r.bytes);
        }
        let Some(failure) = r.error else { return };
        if let Some(c) = self.errors.get(failure.source().index()) {
            c.inc();
        }
        let by_kind = match failure {
            Failure::Policy(kind) => self.blocked.get(kind.index()),
            Failure::Upstream(cause) => self.upstream_errors.get(cause.index()),
            Failure::Request | Failure::Internal => None,
        };
        if let Some(c) = by_kind {
            c.inc();
        }
    }

    fn group_counters(&self, group: &Arc<str>) -> GroupCounters {
        let cached = self
            .group_counters
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .find(|c| Arc::ptr_eq(&c.name, group) || c.name == *group)
            .cloned();
        if let Some(counters) = cached {
            return counters;
        }
        let result = |result: &str| {
            self.group_requests
                .get_or_create(&[("group", group.clone()), ("result", Arc::from(result))])
                .clone()
        };
        let counters = GroupCounters {
            name: group.clone(),
            served: result("served"),
            blocked: result("blocked"),
            bytes: self
                .group_bytes
                .get_or_create(&[("group", group.clone())])
                .clone(),
        };
        let mut cache = self
            .group_counters
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() < MAX_CACHED_GROUPS {
            cache.push(counters.clone());
        }
        counters
    }

    /// What the clients of `group` did since start.
    pub fn group_counts(&self, group: &Arc<str>) -> GroupCounts {
        let requests = |result: &str| {
            self.group_requests
                .get_or_create(&[("group", group.clone()), ("result", Arc::from(result))])
                .get()
        };
        let blocked = requests("blocked");
        GroupCounts {
            requests: requests("served") + blocked,
            blocked,
            bytes: self
                .group_bytes
                .get_or_create(&[("group", group.clone())])
                .get(),
        }
    }

    /// Every metric in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "metrics could not be encoded");
        }
        out
    }

    /// Every sample, read back from [`encode`](Self::encode)'s text, with its
    /// metric's help text.
    #[cfg(test)]
    pub fn samples(&self) -> Vec<Sample> {
        parse_samples(&self.encode())
    }
}

/// One sample of the exposition.
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Sample {
    /// The sample's name with its labels, as in the exposition
    /// (`ferry_requests_total{class="2xx"}`).
    pub name: String,
    pub help: String,
    pub value: f64,
}

#[cfg(test)]
/// Reads the samples of an OpenMetrics text (as this module writes it:
/// `# HELP` before each family, one sample a line).
fn parse_samples(text: &str) -> Vec<Sample> {
    let mut help = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = rest
                .split_once(' ')
                .map_or("", |(_, h)| h)
                .trim_end_matches('.')
                .to_string();
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if let Some((name, value)) = line.rsplit_once(' ') {
            if let Ok(value) = value.parse() {
                out.push(Sample {
                    name: name.to_string(),
                    help: help.clone(),
                    value,
                });
            }
        }
    }
    out
}

fn counter(registry: &mut Registry, name: &str, help: &str) -> Counter {
    let c = Counter::default();
    registry.register(name, help, c.clone());
    c
}

fn gauge(registry: &mut Registry, name: &str, help: &str) -> Gauge {
    let g = Gauge::default();
    registry.register(name, help, g.clone());
    g
}

/// A counter family with one label, every value created up front so each
/// shows from the start and an update is one atomic add (no label lookup).
fn labelled(
    registry: &mut Registry,
    name: &str,
    help: &str,
    label: &'static str,
    values: &[&'static str],
) -> Vec<Counter> {
    let family = Family::<Labels, Counter>::default();
    let counters = values
        .iter()
        .map(|v| family.get_or_create_owned(&[(label, *v)]))
        .collect();
    registry.register(name, help, family);
    counters
}

impl Collector for StateCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let adm = &self.admission;
        let gauges: Vec<(&str, &str, i64)> = vec![
            (
                "ferry_uptime_seconds",
                "Seconds since the proxy started.",
                self.started.elapsed().as_secs() as i64,
            ),
            (
                "ferry_fetch_slots_in_use",
                "Origin fetches holding a slot.",
                adm.in_flight.load(Ordering::SeqCst) as i64,
            ),
            (
                "ferry_fetch_queue_length",
                "Requests waiting for a fetch slot.",
                adm.queued.load(Ordering::SeqCst) as i64,
            ),
            (
                "ferry_upstream_pooled",
                "Reusable upstream connections open (max_pooled_upstream bounds them).",
                self.upstream_pool.open() as i64,
            ),
            (
                "ferry_fetch_slots",
                "Fetch slots (max_concurrent).",
                self.max_concurrent as i64,
            ),
        ];
        let mut counters: Vec<(&str, &str, u64)> = vec![
            (
                "ferry_fetches_rejected",
                "Requests refused because the queue was full or the wait too long.",
                adm.rejected.load(Ordering::Relaxed),
            ),
            (
                "ferry_log_lines_dropped",
                "Access-log lines dropped because the log fell behind.",
                self.log_dropped.load(Ordering::Relaxed),
            ),
        ];
        let mut gauges = gauges;
        if let Some(cache) = &self.cache {
            let c = cache.stats();
            gauges.extend([
                (
                    "ferry_cache_objects",
                    "Objects stored on disk.",
                    c.entries as i64,
                ),
                ("ferry_cache_bytes", "Bytes stored on disk.", c.bytes as i64),
                (
                    "ferry_cache_max_bytes",
                    "The cache size bound.",
                    c.max_bytes as i64,
                ),
                (
                    "ferry_cache_memory_bytes",
                    "Bytes in the memory tier.",
                    c.memory_bytes as i64,
                ),
            ]);
            counters.extend([
                ("ferry_cache_stores", "Responses stored.", c.stores),
                (
                    "ferry_cache_store_failures",
                    "Stores abandoned by a disk error.",
                    c.store_failures,
                ),
                ("ferry_cache_evictions", "Objects evicted.", c.evictions),
                (
                    "ferry_cache_corrupt",
                    "Damaged objects found and removed.",
                    c.corrupt_removed,
                ),
            ]);
        }
        for (name, help, value) in gauges {
            let g = ConstGauge::new(value);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        for (name, help, value) in counters {
            let c = ConstCounter::new(value);
            c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::SystemTime;

    use super::*;
    use crate::outcome::{CacheOutcome, Failure, Fwd};

    fn metrics() -> Metrics {
        Metrics::new(StateCollector {
            started: Instant::now(),
            admission: Arc::new(AdmissionStats::default()),
            max_concurrent: 5,
            cache: None,
            log_dropped: Arc::default(),
            upstream_pool: PoolCap::new(1),
            name: "ferry".into(),
        })
    }

    fn record(status: u16, cache: CacheOutcome, error: Option<Failure>) -> AccessRecord {
        AccessRecord {
            time: SystemTime::now(),
            client: SocketAddr::from(([127, 0, 0, 1], 1)),
            user: None,
            method: http::Method::GET,
            url: "http://a.test/".into(),
            version: "HTTP/1.1",
            status,
            bytes: 10,
            duration_us: 1_500,
            cache,
            kind: crate::outcome::RequestKind::Origin,
            error,
            user_agent: None,
            referer: None,
            rule: None,
            group: None,
        }
    }

    fn value(m: &Metrics, name: &str) -> Option<f64> {
        m.samples()
            .into_iter()
            .find(|s| s.name == name)
            .map(|s| s.value)
    }

    #[test]
    fn every_metric_is_exposed_from_the_start_with_its_help() {
        let m = metrics();
        let samples = m.samples();
        for name in [
            "ferry_requests_total{outcome=\"fresh_hit\",code_class=\"2xx\"}",
            "ferry_requests_total{outcome=\"blocked\",code_class=\"4xx\"}",
            "ferry_request_duration_seconds_count{outcome=\"miss\"}",
            "ferry_origin_fetch_duration_seconds_count",
            "ferry_response_bytes_total{source=\"cache\"}",
            "ferry_blocked_total{rule_kind=\"domain\"}",
            "ferry_upstream_errors_total{cause=\"dns\"}",
            "ferry_errors_total{source=\"upstream\"}",
            "ferry_sent_bytes_total",
            "ferry_connections_open",
            "ferry_fetch_slots_in_use",
            "ferry_fetch_queue_length",
            "ferry_fetch_slots",
            "ferry_fetches_rejected_total",
            "ferry_uptime_seconds",
        ] {
            let s = samples.iter().find(|s| s.name == name);
            assert!(s.is_some(), "{name} missing from {samples:#?}");
            assert!(!s.unwrap().help.is_empty(), "{name} has no help");
        }
        assert_eq!(value(&m, "ferry_fetch_slots"), Some(5.0));
        let build = format!(
            "ferry_build_info{{version=\"{}\",name=\"ferry\"}}",
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(value(&m, &build), Some(1.0));
    }

    #[test]
    fn a_record_updates_outcome_bytes_duration_and_failure_counters() {
        let m = metrics();
        m.record_response(&record(200, CacheOutcome::Hit { ttl: 1 }, None));
        m.record_response(&record(
            502,
            CacheOutcome::FetchFailed { fwd: Fwd::UriMiss },
            Some(Failure::Upstream(UpstreamCause::Dns)),
        ));
        m.record_response(&record(
            403,
            CacheOutcome::Refused,
            Some(Failure::Policy(RuleKind::Domain)),
        ));
        let v = |name: &str| value(&m, name);
        assert_eq!(
            v("ferry_requests_total{outcome=\"fresh_hit\",code_class=\"2xx\"}"),
            Some(1.0)
        );
        assert_eq!(
            v("ferry_requests_total{outcome=\"error\",code_class=\"5xx\"}"),
            Some(1.0)
        );
        assert_eq!(
            v("ferry_requests_total{outcome=\"blocked\",code_class=\"4xx\"}"),
            Some(1.0)
        );
        assert_eq!(v("ferry_sent_bytes_total"), Some(30.0));
        assert_eq!(
            v("ferry_response_bytes_total{source=\"cache\"}"),
            Some(10.0)
        );
        assert_eq!(
            v("ferry_response_bytes_total{source=\"origin\"}"),
            Some(0.0)
        );
        assert_eq!(v("ferry_errors_total{source=\"upstream\"}"), Some(1.0));
        assert_eq!(v("ferry_upstream_errors_total{cause=\"dns\"}"), Some(1.0));
        assert_eq!(v("ferry_blocked_total{rule_kind=\"domain\"}"), Some(1.0));
        assert_eq!(
            v("ferry_request_duration_seconds_bucket{le=\"0.0025\",outcome=\"fresh_hit\"}"),
            Some(1.0)
        );
        assert_eq!(
            v("ferry_request_duration_seconds_bucket{le=\"0.001\",outcome=\"fresh_hit\"}"),
            Some(0.0)
        );
    }
}
