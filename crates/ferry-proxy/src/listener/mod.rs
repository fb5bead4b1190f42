//! Listeners and client connections: binds every listen address, accepts,
//! applies the client-address rule, serves HTTP/1.x with keep-alive, upgrades
//! and a header-read timeout, reloads list files on SIGHUP, and shuts down
//! gracefully on SIGINT/SIGTERM (stop accepting, drain, exit). Each request
//! on a connection is handed to [`crate::exchange::handle`].

mod gate;
mod proxy_protocol;
pub mod stall;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Semaphore, watch};
use tokio_util::task::TaskTracker;

use self::gate::ConnectionCaps;
use self::stall::WriteStall;
use crate::access::{Authenticator, NetworkPolicy, Rules};
use crate::config::ProxyConfig;
use crate::error::StartupError;
use crate::exchange::{self, ConnInfo};
use crate::intercept::Interception;
use crate::intercept::ca::LocalCa;
use crate::intercept::mint::{MintError, Minter};
use crate::intercept::passthrough::AutoPassthrough;
use crate::ops::access_log::AccessLog;
use crate::ops::activity::Activity;
use crate::ops::metrics::{Metrics, StateCollector};
use crate::state::ProxyState;
use crate::upstream::{Admission, Upstream};
use http::StatusCode;

/// Connections over a cap answered with a page at once; beyond it they are
/// just closed.
const REFUSALS_AT_ONCE: usize = 64;

/// Largest request head accepted; beyond it the client gets 431.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// How many intercepted hosts' TLS configs are kept.
const LEAF_CONFIGS: usize = 1024;

pub async fn serve(config: ProxyConfig) -> Result<(), StartupError> {
    let rules = Rules::build(&config)?;
    let networks =
        NetworkPolicy::for_this_host(config.deny_networks.clone(), config.allow_networks.clone());
    let upstream = Upstream::new(
        &config.upstream_ca,
        config.connect_timeout(),
        config.response_timeout(),
        Arc::new(networks),
        config.max_pooled_upstream,
    )?;
    let intercept = if config.intercept_tls {
        let ca = LocalCa::load(&config.ca_dir_or_default()).map_err(MintError::from)?;
        Some(Arc::new(Interception {
            minter: Minter::new(&ca, LEAF_CONFIGS)?,
            passthrough: AutoPassthrough::default(),
        }))
    } else {
        None
    };

    let mut listeners = Vec::new();
    for addr in &config.listen {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartupError::Bind {
                addr: *addr,
                source,
            })?;
        listeners.push(listener);
    }
    let own_addrs: Vec<SocketAddr> = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .collect();

    let cache = open_cache(&config);
    let admission = Admission::new(
        config.max_concurrent,
        config.max_queue,
        config.queue_timeout(),
    );
    let activity = Activity::new(admission.stats().clone());
    let log = AccessLog::open(&config.access_log, config.log_format, activity.clone()).map_err(
        |source| StartupError::AccessLog {
            path: config.access_log.clone(),
            source,
        },
    )?;
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
    let state = Arc::new(ProxyState {
        cache,
        rules: ArcSwap::from_pointee(rules),
        auth: Authenticator::new(&config.users, &config.auth_realm),
        upstream,
        admission,
        tunnels: Arc::new(Semaphore::new(config.max_tunnels)),
        tunnel_tasks: TaskTracker::new(),
        log,
        metrics,
        own_addrs: own_addrs.clone(),
        via_11: http::HeaderValue::from_str(&format!("1.1 {}", config.via_pseudonym))
            .unwrap_or_else(|_| http::HeaderValue::from_static("1.1 ferry")),
        intercept,
        activity,
        started,
        csrf_token: crate::state::new_csrf_token(),
        draining: std::sync::atomic::AtomicBool::new(false),
        config,
    });

    if let Some(cache) = state.cache.clone() {
        // Picks up `ferry cache purge/clear` run while the proxy is up.
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            loop {
                every.tick().await;
                let cache = cache.clone();
                let _ = tokio::task::spawn_blocking(move || cache.sync_external_changes()).await;
            }
        });
    }

    let mut sigint = signal(SignalKind::interrupt()).map_err(StartupError::Signals)?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(StartupError::Signals)?;
    let mut sighup = signal(SignalKind::hangup()).map_err(StartupError::Signals)?;

    let connections = TaskTracker::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut accept_tasks = Vec::new();
    let caps = ConnectionCaps::new(
        state.config.max_connections,
        state.config.max_connections_per_client,
    );
    for listener in listeners {
        if let Ok(addr) = listener.local_addr() {
            // Tests and scripts read this line to learn the bound port.
            eprintln!("ferry: listening on http://{addr}");
            eprintln!("ferry: dashboard at http://{}/", dashboard_addr(addr));
            tracing::info!(%addr, "listening");
        }
        accept_tasks.push(tokio::spawn(accept_loop(
            listener,
            state.clone(),
            caps.clone(),
            connections.clone(),
            stop_rx.clone(),
        )));
    }

    loop {
        tokio::select! {
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
            _ = sighup.recv() => reload_rules(&state),
        }
    }

    // First the drain period: still serving, but failing health checks, so
    // a load balancer moves traffic elsewhere before the listener closes
    // (closing at once would fail the requests it is about to send here).
    state
        .draining
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let drain = state.config.drain_period();
    if !drain.is_zero() {
        tracing::info!(secs = drain.as_secs(), "draining: health checks answer 503");
        eprintln!(
            "ferry: draining for {} s (/healthz answers 503; a second signal skips this)",
            drain.as_secs()
        );
        tokio::select! {
            _ = tokio::time::sleep(drain) => {}
            _ = sigint.recv() => {}
            _ = sigterm.recv() => {}
        }
    }

    tracing::info!("shutting down: no longer accepting, draining requests");
    eprintln!("ferry: shutting down");
    let _ = stop_tx.send(true);
    for task in accept_tasks {
        let _ = task.await;
    }
    state.tunnel_tasks.close();
    let limit = state.config.shutdown_timeout();
    connections.close();
    let drained = tokio::time::timeout(limit, async {
        connections.wait().await;
        state.tunnel_tasks.wait().await;
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            secs = limit.as_secs(),
            "connections still open after the shutdown timeout; closing them"
        );
    }
    Ok(())
}

/// Where a browser on this host reaches the dashboard of a listener: a
/// wildcard address is shown as loopback.
fn dashboard_addr(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, addr.port()))
        }
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    }
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

fn reload_rules(state: &ProxyState) {
    match Rules::build(&state.config) {
        Ok(rules) => {
            tracing::info!(
                deny = rules.deny.len(),
                allow = rules.allow.len(),
                "SIGHUP: access lists reloaded"
            );
            eprintln!(
                "ferry: access lists reloaded ({} deny, {} allow patterns)",
                rules.deny.len(),
                rules.allow.len()
            );
            state.rules.store(Arc::new(rules));
        }
        Err(e) => {
            tracing::error!(error = %e, "SIGHUP: reload failed; keeping the previous rules");
            eprintln!("ferry: reload failed, keeping the previous rules: {e}");
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<ProxyState>,
    caps: Arc<ConnectionCaps>,
    connections: TaskTracker,
    mut stop: watch::Receiver<bool>,
) {
    let gate = Gate {
        state,
        caps,
        connections,
        refusing: Arc::new(Semaphore::new(REFUSALS_AT_ONCE)),
        stop: stop.clone(),
    };
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => return,
        };
        match accepted {
            Ok((stream, peer)) if gate.state.config.is_balancer(peer.ip()) => {
                // Counted against the caps only once the header has said
                // whose connection it is: the balancer carries everyone's.
                let gate_for_task = gate.clone();
                gate.connections
                    .spawn(async move { gate_for_task.admit_from_balancer(stream, peer).await });
            }
            Ok((stream, peer)) => gate.admit(stream, peer, peer),
            Err(e) => {
                // Usually out of file descriptors: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// What deciding on one accepted connection needs (one per listener).
#[derive(Clone)]
struct Gate {
    state: Arc<ProxyState>,
    caps: Arc<ConnectionCaps>,
    connections: TaskTracker,
    /// Refusal pages being written at once (see [`REFUSALS_AT_ONCE`]).
    refusing: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
}

impl Gate {
    /// Reads the PROXY header of a connection from a balancer, then admits
    /// it as the client it names.
    async fn admit_from_balancer(&self, mut stream: TcpStream, balancer: SocketAddr) {
        let header_timeout = self.state.config.header_timeout();
        match proxy_protocol::read_header(&mut stream, header_timeout).await {
            Ok(proxy_protocol::Announced::Client(client)) => self.admit(stream, balancer, client),
            Ok(proxy_protocol::Announced::Balancer) => self.admit(stream, balancer, balancer),
            Err(e) => {
                self.state.metrics.clients_refused.inc();
                tracing::warn!(%balancer, error = %e, "connection from a balancer refused");
                gate::refuse(stream, StatusCode::BAD_REQUEST, &e.to_string()).await;
            }
        }
    }

    /// Applies the caps and the client-address rule to `client` (the peer,
    /// or the client a balancer named), then serves or refuses.
    fn admit(&self, stream: TcpStream, peer: SocketAddr, client: SocketAddr) {
        let state = &self.state;
        // Counted first: refusals take a place too, so a flood of refused
        // connections from one address is bounded as well.
        let counted = match self.caps.admit(client.ip()) {
            Ok(counted) => counted,
            Err(cause) => {
                state.metrics.connections_capped.inc();
                tracing::info!(%client, %peer, cause, "connection refused");
                // A page for the refused, while few are being refused at
                // once; under a flood, just the close.
                if let Ok(permit) = self.refusing.clone().try_acquire_owned() {
                    self.connections.spawn(async move {
                        let _permit = permit;
                        gate::refuse(stream, StatusCode::SERVICE_UNAVAILABLE, cause).await;
                    });
                }
                return;
            }
        };
        let from_balancer = state.config.is_balancer(peer.ip());
        // A balancer may always speak for itself (its health checks).
        let own_connection = from_balancer && client == peer;
        if !own_connection {
            if let Err(refusal) = state.rules.load().check_client(client.ip()) {
                state.metrics.clients_refused.inc();
                tracing::info!(%client, %peer, "client address not allowed");
                let cause = refusal.to_string();
                self.connections.spawn(async move {
                    let _counted = counted;
                    gate::refuse(stream, StatusCode::FORBIDDEN, &cause).await;
                });
                return;
            }
        }
        // Behind balancers, a connection from anyone else that opens with
        // a PROXY header is refused: only a balancer may say whose
        // connection it is.
        let check_for_header = !state.config.proxy_protocol_from.is_empty() && !from_balancer;
        let gauge = ConnectionGauge::new(state.metrics.clone());
        let state = state.clone();
        let stop = self.stop.clone();
        self.connections.spawn(async move {
            let _counted = counted;
            let _gauge = gauge;
            if check_for_header
                && proxy_protocol::starts_with_header(&stream, state.config.header_timeout()).await
            {
                state.metrics.clients_refused.inc();
                tracing::warn!(%peer, "PROXY protocol header from an address that is not a balancer");
                gate::refuse(
                    stream,
                    StatusCode::BAD_REQUEST,
                    "a PROXY protocol header is accepted only from the balancers (proxy-protocol-from)",
                )
                .await;
                return;
            }
            serve_connection(stream, client, state, stop).await;
        });
    }
}

/// Serves one client connection until it closes; when `stop` turns true the
/// connection finishes its current request and then closes.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    state: Arc<ProxyState>,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let conn_info = Arc::new(ConnInfo {
        peer,
        intercepted: None,
    });
    let service_state = state.clone();
    let service = hyper::service::service_fn(move |req| {
        exchange::handle(service_state.clone(), conn_info.clone(), req)
    });
    let stream = WriteStall::new(
        stream,
        state.config.response_timeout(),
        state.config.min_rate(),
    );
    // Built in a block so the builder is not kept alive inside this
    // connection's future (which every open connection holds).
    let conn = {
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(state.config.header_timeout())
            .max_header_size(MAX_HEAD_BYTES);
        builder
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades()
    };
    drop(state);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        _ = async { let _ = stop.wait_for(|stop| *stop).await; } => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "client connection ended with an error");
    }
}

/// Keeps the open-connections gauge right however the connection ends.
struct ConnectionGauge(Arc<Metrics>);

impl ConnectionGauge {
    fn new(metrics: Arc<Metrics>) -> Self {
        metrics.connections_open.inc();
        metrics.connections_total.inc();
        ConnectionGauge(metrics)
    }
}

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        self.0.connections_open.dec();
    }
}
