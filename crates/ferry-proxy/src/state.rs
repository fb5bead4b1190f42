//! What every request phase shares, built once at start: the settings, the
//! current access rules (swapped atomically on SIGHUP), the upstream client,
//! the fetch queue, the tunnel limit, interception's leaves, the cache, and
//! the telemetry (access log, metrics, recent activity).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use crate::access::{Authenticator, NetworkPolicy, Rules};
use crate::cache_rules::CacheRules;
use crate::config::{ConfigError, ProxyConfig};
use crate::error::StartupError;
use crate::groups::group::Groups;
use crate::groups::quota::QuotaBook;
use crate::groups::rate::Rates;
use crate::groups::subscriptions::ListSet;
use crate::host::{OwnNames, normalize_host};
use crate::intercept::Interception;
use crate::intercept::ca::{self, LocalCa};
use crate::intercept::mint::{MintError, Minter};
use crate::intercept::passthrough::AutoPassthrough;
use crate::telemetry::{AccessLog, Activity, Metrics, StateCollector};
use crate::upstream::{Admission, Upstream};

/// How many intercepted hosts' TLS configs are kept.
const LEAF_CONFIGS: usize = 1024;

pub struct ProxyState {
    pub config: ProxyConfig,
    pub rules: ArcSwap<Rules>,
    /// The operator's cache rules and the presets', tried in order.
    pub cache_rules: CacheRules,
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
    /// The names the proxy's own pages answer to.
    pub own_names: OwnNames,
    /// `1.1 <pseudonym>`, made once.
    pub via_11: http::HeaderValue,
    /// Leaves for intercepted tunnels; `None` unless `intercept_tls`.
    pub intercept: Option<Arc<Interception>>,
    /// Recent traffic for the dashboard.
    pub activity: Arc<Activity>,
    pub started: Instant,
    /// Proves a dashboard action came from a page this proxy served: random
    /// per run, in every form, checked on every POST.
    pub csrf_token: String,
    /// Set on SIGTERM/SIGINT: `/healthz` answers 503 so load balancers take
    /// this node out while it still serves (`drain_period`).
    pub draining: std::sync::atomic::AtomicBool,
    /// The groups of clients (`[[groups]]`), swapped whole on SIGHUP.
    pub groups: ArcSwap<Groups>,
    /// The subscribed lists' last good copies, swapped whole on each change.
    pub lists: ArcSwap<ListSet>,
    /// Wakes the subscribed lists' refresh (SIGHUP).
    pub refresh_lists: tokio::sync::Notify,
    /// Each client's bytes today, for the groups' daily quotas.
    pub quota: QuotaBook,
    /// Each paced client's clocks, for the groups' rates.
    pub rates: Rates,
}

/// A fresh random token for [`ProxyState::csrf_token`].
pub fn new_csrf_token() -> String {
    use rand_core::RngCore;
    let mut bytes = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The parts of the state that can fail from the configuration alone (a
/// list file, an upstream CA file, the local CA), made before the
/// listeners are bound so such a mistake is reported without taking a port.
pub struct Prepared {
    rules: Rules,
    cache_rules: CacheRules,
    upstream: Upstream,
    intercept: Option<Arc<Interception>>,
    groups: Groups,
}

impl Prepared {
    pub fn new(config: &ProxyConfig) -> Result<Prepared, StartupError> {
        let rules = Rules::build(config)?;
        let groups = build_groups(config)?;
        let cache_rules = CacheRules::build(config).map_err(ConfigError::Invalid)?;
        let networks = NetworkPolicy::for_this_host(
            config.deny_networks.clone(),
            config.allow_networks.clone(),
        );
        let upstream = Upstream::new(
            config.upstream_roots,
            &config.upstream_ca,
            config.connect_timeout(),
            config.response_timeout(),
            Arc::new(networks),
            config.max_pooled_upstream,
        )?;
        let intercept = if config.intercept_tls {
            let dir = ca::dir_or_default(config.ca_dir.as_deref());
            let ca = LocalCa::load(&dir).map_err(MintError::from)?;
            Some(Arc::new(Interception {
                minter: Minter::new(&ca, LEAF_CONFIGS)?,
                passthrough: AutoPassthrough::default(),
            }))
        } else {
            None
        };
        Ok(Prepared {
            rules,
            cache_rules,
            upstream,
            intercept,
            groups,
        })
    }
}

impl ProxyState {
    /// The whole state, once the listeners are bound at `own_addrs`: opens
    /// the cache (or says loudly why there is none) and the access log.
    pub fn new(
        config: ProxyConfig,
        prepared: Prepared,
        own_addrs: Vec<SocketAddr>,
    ) -> Result<ProxyState, StartupError> {
        let Prepared {
            rules,
            cache_rules,
            upstream,
            intercept,
            groups,
        } = prepared;
        let quota = load_quota(&config);
        let cache = open_cache(&config);
        let admission = Admission::new(
            config.max_concurrent,
            config.max_queue,
            config.queue_timeout(),
        );
        let activity = Activity::new(admission.stats().clone());
        let log = AccessLog::open(&config.access_log, config.log_format, activity.clone())
            .map_err(|source| StartupError::AccessLog {
                path: config.access_log.clone(),
                source,
            })?;
        let started = Instant::now();
        let metrics = Arc::new(Metrics::new(StateCollector {
            started,
            admission: admission.stats().clone(),
            max_concurrent: config.max_concurrent,
            cache: cache.clone(),
            log_dropped: log.dropped(),
            upstream_pool: upstream.pool_cap(),
            name: config.via_pseudonym.clone(),
        }));
        Ok(ProxyState {
            cache,
            rules: ArcSwap::from_pointee(rules),
            cache_rules,
            auth: Authenticator::new(&config.users, &config.auth_realm),
            upstream,
            admission,
            tunnels: Arc::new(Semaphore::new(config.max_tunnels)),
            tunnel_tasks: TaskTracker::new(),
            log,
            metrics,
            own_addrs,
            own_names: OwnNames::for_this_host(&config.public_names, &config.via_pseudonym),
            via_11: http::HeaderValue::from_str(&format!("1.1 {}", config.via_pseudonym))
                .unwrap_or_else(|_| http::HeaderValue::from_static("1.1 ferry")),
            intercept,
            activity,
            started,
            csrf_token: new_csrf_token(),
            draining: std::sync::atomic::AtomicBool::new(false),
            groups: ArcSwap::from_pointee(groups),
            lists: ArcSwap::default(),
            refresh_lists: tokio::sync::Notify::new(),
            quota,
            rates: Rates::default(),
            config,
        })
    }

    /// Where the subscribed lists' last good copies are kept.
    pub fn lists_dir(&self) -> std::path::PathBuf {
        self.config.state_dir_or_default().join("lists")
    }

    /// Where the daily quota counts are kept.
    pub fn quota_path(&self) -> std::path::PathBuf {
        self.config.state_dir_or_default().join("quota.txt")
    }

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

/// The groups of `config`, checked: a group naming a list that is not
/// configured, or a schedule, rate or quota that cannot be read, stops the
/// start (and a SIGHUP keeps the groups in force).
pub fn build_groups(config: &ProxyConfig) -> Result<Groups, crate::groups::group::GroupError> {
    crate::groups::group::check_lists(&config.lists)?;
    let lists: Vec<String> = config.lists.iter().map(|l| l.name.clone()).collect();
    Groups::build(&config.groups, &lists)
}

/// The groups as the config file says now (SIGHUP): its `[[groups]]` read
/// again and checked against the users and lists the proxy runs with; the
/// groups of the configuration it started with when it has no file.
pub fn reread_groups(config: &ProxyConfig) -> Result<Groups, String> {
    let groups = match &config.config_file {
        Some(path) => {
            ProxyConfig::from_file(path)
                .map_err(|e| e.to_string())?
                .groups
        }
        None => config.groups.clone(),
    };
    config
        .check_group_users(&groups)
        .map_err(|e| e.to_string())?;
    let lists: Vec<String> = config.lists.iter().map(|l| l.name.clone()).collect();
    Groups::build(&groups, &lists).map_err(|e| e.to_string())
}

/// Today's quota counts from the state dir (when a group has a quota).
fn load_quota(config: &ProxyConfig) -> QuotaBook {
    if !config.groups.iter().any(|g| g.daily_quota.is_some()) {
        return QuotaBook::default();
    }
    let path = config.state_dir_or_default().join("quota.txt");
    let (book, warnings) = QuotaBook::load(&path);
    for warning in warnings {
        tracing::warn!(%warning, "quota counts");
        eprintln!("ferry: warning: {warning}");
    }
    book
}

/// Opens the cache, or explains loudly why the proxy runs without one.
fn open_cache(config: &ProxyConfig) -> Option<ferry_cache::Cache> {
    if !config.cache.enabled {
        return None;
    }
    let cfg = config.cache.cache_config();
    let dir = cfg.dir.clone();
    match ferry_cache::Cache::open(cfg) {
        Ok(cache) => {
            eprintln!("ferry: caching in {}", dir.display());
            Some(cache)
        }
        Err(e) => {
            tracing::warn!(error = %e, "cache unusable; proxying without a cache");
            eprintln!("ferry: warning: {e}; running without a cache");
            None
        }
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
        let admission = Admission::new(
            config.max_concurrent,
            config.max_queue,
            config.queue_timeout(),
        );
        let upstream = Upstream::new(
            crate::config::UpstreamRoots::Bundled,
            &[],
            config.connect_timeout(),
            config.response_timeout(),
            Arc::new(NetworkPolicy::default()),
            config.max_pooled_upstream,
        )
        .unwrap();
        let activity = Activity::new(admission.stats().clone());
        let metrics = Arc::new(Metrics::new(StateCollector {
            started: Instant::now(),
            admission: admission.stats().clone(),
            max_concurrent: config.max_concurrent,
            cache: cache.clone(),
            log_dropped: Arc::default(),
            upstream_pool: upstream.pool_cap(),
            name: config.via_pseudonym.clone(),
        }));
        Arc::new(ProxyState {
            rules: ArcSwap::from_pointee(Rules::build(&config).unwrap()),
            cache_rules: CacheRules::build(&config).unwrap(),
            auth: None,
            upstream,
            admission,
            tunnels: Arc::new(Semaphore::new(config.max_tunnels)),
            tunnel_tasks: TaskTracker::new(),
            log: AccessLog::discard(),
            metrics,
            cache,
            own_addrs: Vec::new(),
            own_names: OwnNames::new(&config.public_names, &config.via_pseudonym, None),
            via_11: http::HeaderValue::from_static("1.1 ferry"),
            intercept: None,
            activity,
            started: Instant::now(),
            csrf_token: new_csrf_token(),
            draining: std::sync::atomic::AtomicBool::new(false),
            groups: ArcSwap::from_pointee(build_groups(&config).unwrap()),
            lists: ArcSwap::default(),
            refresh_lists: tokio::sync::Notify::new(),
            quota: QuotaBook::default(),
            rates: Rates::default(),
            config,
        })
    }
}
