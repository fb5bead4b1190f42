//! The listener's decision on each accepted connection, before anything
//! of a request is read: the connection caps, the client-address rule, and
//! behind a load balancer the PROXY protocol header that names the client.
//! An admitted connection is served by `connection`; a refused one gets a
//! fixed page naming the rule.

use std::net::SocketAddr;
use std::sync::Arc;

use http::StatusCode;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::caps::{ConnectionCaps, refuse};
use super::connection::serve_connection;
use super::proxy_protocol;
use crate::conn::ConnInfo;
use crate::state::ProxyState;
use crate::telemetry::Metrics;

/// Connections over a cap answered with a page at once; beyond it they are
/// just closed.
const REFUSALS_AT_ONCE: usize = 64;

/// What deciding on one accepted connection needs (one per listener).
#[derive(Clone)]
pub struct Gate {
    state: Arc<ProxyState>,
    caps: Arc<ConnectionCaps>,
    connections: TaskTracker,
    /// Refusal pages being written at once (see [`REFUSALS_AT_ONCE`]).
    refusing: Arc<Semaphore>,
    stop: CancellationToken,
}

impl Gate {
    /// Decides on a connection just accepted from `peer`.
    pub fn accept(&self, stream: TcpStream, peer: SocketAddr) {
        if self.state.config.is_balancer(peer.ip()) {
            // Counted against the caps only once the header has said whose
            // connection it is: the balancer carries everyone's.
            let gate = self.clone();
            self.connections
                .spawn(async move { gate.admit_from_balancer(stream, peer).await });
        } else {
            self.admit(stream, peer, peer);
        }
    }

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
                refuse(stream, StatusCode::BAD_REQUEST, &e.to_string()).await;
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
                        refuse(stream, StatusCode::SERVICE_UNAVAILABLE, cause).await;
                    });
                }
                return;
            }
        };
        let from_balancer = state.config.is_balancer(peer.ip());
        // A balancer speaking for itself (a LOCAL or UNKNOWN header) is
        // judged by the client rules like anyone, except that its health
        // checks are always answered.
        let own_connection = from_balancer && client == peer;
        let mut health_checks_only = false;
        if let Err(refusal) = state.rules.load().check_client(client.ip()) {
            if own_connection {
                health_checks_only = true;
            } else {
                state.metrics.clients_refused.inc();
                tracing::info!(%client, %peer, "client address not allowed");
                let cause = refusal.to_string();
                self.connections.spawn(async move {
                    let _counted = counted;
                    refuse(stream, StatusCode::FORBIDDEN, &cause).await;
                });
                return;
            }
        }
        // Behind balancers, a connection from anyone else that opens with
        // a PROXY header is refused: only a balancer may say whose
        // connection it is.
        let check_for_header = !state.config.proxy_protocol_from.is_empty() && !from_balancer;
        let gauge = ConnectionGauge::new(state.metrics.clone());
        let conn = ConnInfo {
            peer: client,
            intercepted: None,
            health_checks_only,
        };
        let stop = self.stop.clone();
        if !check_for_header {
            // Spawned as it is: the connection's task is its future alone.
            self.connections.spawn(serve_connection(
                stream,
                conn,
                state.clone(),
                stop,
                (counted, gauge),
            ));
            return;
        }
        let state = state.clone();
        self.connections.spawn(async move {
            if proxy_protocol::starts_with_header(&stream, state.config.header_timeout()).await {
                state.metrics.clients_refused.inc();
                tracing::warn!(%peer, "PROXY protocol header from an address that is not a balancer");
                refuse(
                    stream,
                    StatusCode::BAD_REQUEST,
                    "a PROXY protocol header is accepted only from the balancers (proxy-protocol-from)",
                )
                .await;
                return;
            }
            serve_connection(stream, conn, state, stop, (counted, gauge)).await;
        });
    }
}

impl Gate {
    pub fn new(
        state: Arc<ProxyState>,
        caps: Arc<ConnectionCaps>,
        connections: TaskTracker,
        stop: CancellationToken,
    ) -> Gate {
        Gate {
            state,
            caps,
            connections,
            refusing: Arc::new(Semaphore::new(REFUSALS_AT_ONCE)),
            stop,
        }
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
