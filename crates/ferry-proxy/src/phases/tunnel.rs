//! CONNECT tunnels: counted against `max_tunnels` (not the fetch slots),
//! opened to the destination (the access rules were checked by the exchange),
//! then bytes are copied both ways until either side closes or the tunnel is
//! idle too long. The access-log line is written when the tunnel ends, with
//! the bytes sent to the client. With `intercept_tls`, a CONNECT is instead
//! answered by the proxy itself ([`Intercept`], served by `intercepted`).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

use super::intercepted::{self, Target};
use crate::access::is_local_client;
use crate::body::{ProxyBody, empty};
use crate::conn::{ClientSocket, RequestHandler};
use crate::error::{InternalError, ProxyError};
use crate::groups::rate::Meter;
use crate::outcome::AccessRecord;
use crate::state::ProxyState;
use crate::telemetry::access_log::log_finished;
use crate::timeouts::idle::IdleWatch;
use crate::turns::TurnIo;

/// One of the `max_tunnels` places, held for the tunnel's life.
fn take_place(state: &ProxyState) -> Result<OwnedSemaphorePermit, ProxyError> {
    Ok(state
        .tunnels
        .clone()
        .try_acquire_owned()
        .map_err(|_| InternalError::TooManyTunnels)?)
}

/// A connected tunnel, waiting for the client to be told `200`.
pub struct OpenTunnel {
    permit: OwnedSemaphorePermit,
    upstream: TcpStream,
}

/// Takes a tunnel place and connects to `host:port`.
pub async fn open(
    state: &ProxyState,
    client: std::net::IpAddr,
    host: &str,
    port: u16,
) -> Result<OpenTunnel, ProxyError> {
    let permit = take_place(state)?;
    let local = is_local_client(client);
    let upstream = state.upstream.connect_tunnel(host, port, local).await?;
    Ok(OpenTunnel { permit, upstream })
}

/// Answers `200` and copies bytes once the client's connection is handed
/// over; logs `record` when the tunnel closes.
pub fn start(
    state: &Arc<ProxyState>,
    open: OpenTunnel,
    req: Request<Incoming>,
    record: AccessRecord,
    started: Instant,
    meter: Meter,
) -> Response<ProxyBody> {
    let OpenTunnel { permit, upstream } = open;
    let idle_limit = state.config.tunnel_idle_timeout();
    let url = record.url.clone();
    run_upgraded(
        state,
        permit,
        req,
        record,
        started,
        move |client| async move {
            let watch = IdleWatch::new();
            // Its group's rate and quota, if the client has them.
            let mut client = watch.track(meter.stream(client));
            let mut origin = watch.track(upstream);
            tokio::select! {
                copied = tokio::io::copy_bidirectional(&mut client, &mut origin) => match copied {
                    Ok((_to_origin, to_client)) => Some(to_client),
                    Err(e) => {
                        tracing::debug!(target = %url, error = %e, "tunnel ended with an error");
                        None
                    }
                },
                _ = watch.idle(idle_limit) => {
                    tracing::debug!(target = %url, "tunnel closed after being idle");
                    None
                }
            }
        },
    )
}

/// The bookkeeping every CONNECT shares: once hyper hands the client's
/// connection over, `run` runs on it (returning the bytes sent to the
/// client, when known) while the tunnel place is held and counted as open;
/// the access-log line is written when it ends.
fn run_upgraded<F, Fut>(
    state: &Arc<ProxyState>,
    permit: OwnedSemaphorePermit,
    req: Request<Incoming>,
    mut record: AccessRecord,
    started: Instant,
    run: F,
) -> Response<ProxyBody>
where
    F: FnOnce(TokioIo<hyper::upgrade::Upgraded>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Option<u64>> + Send,
{
    let state2 = state.clone();
    state.metrics.tunnels_open.inc();
    state.metrics.tunnels_total.inc();
    // Taken now: the request itself is not kept for the tunnel's life.
    let upgrade = hyper::upgrade::on(req);
    state.tunnel_tasks.spawn(async move {
        let _permit = permit;
        match upgrade.await {
            Ok(upgraded) => {
                if let Some(bytes) = run(TokioIo::new(upgraded)).await {
                    record.bytes = bytes;
                }
            }
            Err(e) => tracing::debug!(error = %e, "CONNECT upgrade failed"),
        }
        state2.metrics.tunnels_open.dec();
        log_finished(record, started, &state2.log, &state2.metrics);
    });
    Response::new(empty())
}

/// A CONNECT the proxy will terminate: its tunnel place and its target.
pub struct Intercept {
    permit: OwnedSemaphorePermit,
    host: String,
    port: u16,
    user: Option<String>,
}

impl Intercept {
    /// Takes a tunnel place; nothing is connected upstream (the requests
    /// inside go through the usual upstream client, with full verification).
    pub fn reserve(
        state: &ProxyState,
        host: &str,
        port: u16,
        user: Option<String>,
    ) -> Result<Intercept, ProxyError> {
        let permit = take_place(state)?;
        Ok(Intercept {
            permit,
            host: host.to_string(),
            port,
            user,
        })
    }

    /// Answers `200`; once the connection is handed over, terminates its TLS
    /// and hands each request inside to `handler`. Logs `record` when it
    /// closes.
    pub fn start<H: RequestHandler>(
        self,
        state: &Arc<ProxyState>,
        req: Request<Incoming>,
        peer: std::net::SocketAddr,
        record: AccessRecord,
        started: Instant,
        handler: H,
    ) -> Response<ProxyBody> {
        let Intercept {
            permit,
            host,
            port,
            user,
        } = self;
        let state2 = state.clone();
        run_upgraded(
            state,
            permit,
            req,
            record,
            started,
            move |client| async move {
                let target = Target {
                    host,
                    port,
                    user,
                    peer,
                };
                if let Some((socket, read_ahead)) = own_socket(client) {
                    intercepted::serve_intercepted(&state2, socket, read_ahead, target, handler)
                        .await;
                }
                None
            },
        )
    }
}

/// The client's own socket, out from under hyper's upgrade (whose boxed
/// stream cannot tell when the client is readable), and what the server
/// read past the CONNECT's head: what lets an intercepted connection wait
/// between turns holding nothing else.
fn own_socket(client: TokioIo<hyper::upgrade::Upgraded>) -> Option<(ClientSocket, Bytes)> {
    match client
        .into_inner()
        .downcast::<TokioIo<TurnIo<ClientSocket>>>()
    {
        Ok(parts) => {
            let socket = parts.io.into_inner().into_socket();
            if socket.is_none() {
                tracing::debug!("intercepted connection closed before TLS");
            }
            Some((socket?, parts.read_buf))
        }
        Err(_) => {
            tracing::error!(
                "an intercepted connection came from a socket of an unexpected kind; closed"
            );
            None
        }
    }
}
