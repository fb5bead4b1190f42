//! The proxy's life: binds every listen address, builds the shared state,
//! accepts connections (each decided on by the listener's [`Gate`]),
//! reloads the rules on SIGHUP, and shuts down gracefully on SIGINT/SIGTERM
//! (a drain period for load balancers, stop accepting, let requests finish,
//! exit).
//!
//! - `gate`: who may open a connection (caps, client rule, PROXY protocol);
//! - `caps`: the connection caps, and the refusal written before parsing;
//! - `proxy_protocol`: the header a load balancer opens with;
//! - `connection`: one client connection served as HTTP/1.x, in turns
//!   (`crate::turns`) so that a quiet one drops hyper's state.

mod caps;
mod connection;
mod gate;
mod proxy_protocol;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::caps::ConnectionCaps;
use self::gate::Gate;
use crate::access::Rules;
use crate::background;
use crate::config::ProxyConfig;
use crate::error::StartupError;
use crate::state::{Prepared, ProxyState, reread_groups};

/// Runs the proxy with `config` until SIGINT/SIGTERM, then drains: binds
/// every listen address, builds the shared state, accepts, reloads the
/// rules on SIGHUP, and shuts down gracefully.
pub async fn serve_until_stopped(config: ProxyConfig) -> Result<(), StartupError> {
    let prepared = Prepared::new(&config)?;
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
    let state = Arc::new(ProxyState::new(config, prepared, own_addrs)?);
    if !state.cache_rules.is_empty() {
        eprintln!("ferry: {} cache rules in force", state.cache_rules.len());
    }
    let groups = state.groups.load().iter().count();
    if groups > 0 || !state.config.lists.is_empty() {
        eprintln!(
            "ferry: {groups} groups, {} subscribed lists",
            state.config.lists.len()
        );
    }
    background::subscriptions::start(&state);
    background::quota_saver::start(&state);

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
    let stop = CancellationToken::new();
    let mut accept_tasks = Vec::new();
    let caps = ConnectionCaps::new(
        state.config.max_connections,
        state.config.max_connections_per_client,
    );
    for listener in listeners {
        if let Ok(addr) = listener.local_addr() {
            // Tests and scripts read this line to learn the bound port.
            // One write per line: standard error is unbuffered, and a line
            // written in pieces can reach a reader (a script waiting for the
            // port) cut in the middle of the address.
            let lines = format!(
                "ferry: listening on http://{addr}\nferry: dashboard at http://{}/\n",
                dashboard_addr(addr)
            );
            let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), lines.as_bytes());
            tracing::info!(%addr, "listening");
        }
        accept_tasks.push(tokio::spawn(accept_loop(
            listener,
            state.clone(),
            caps.clone(),
            connections.clone(),
            stop.clone(),
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
    stop.cancel();
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
    background::quota_saver::save(&state).await;
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

/// SIGHUP: the list files and the config file's groups are read again (a
/// mistake keeps what is in force), and the subscribed lists are fetched
/// now.
fn reload_rules(state: &ProxyState) {
    match reread_groups(&state.config) {
        Ok(groups) => {
            let count = groups.iter().count();
            state.groups.store(Arc::new(groups));
            if count > 0 {
                eprintln!("ferry: {count} groups reloaded");
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "SIGHUP: groups not reloaded; keeping the previous ones");
            eprintln!("ferry: groups not reloaded, keeping the previous ones: {e}");
        }
    }
    state.refresh_lists.notify_waiters();
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
    stop: CancellationToken,
) {
    let gate = Gate::new(state, caps, connections, stop.clone());
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => return,
        };
        match accepted {
            Ok((stream, peer)) => gate.accept(stream, peer),
            Err(e) => {
                // Usually out of file descriptors: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
