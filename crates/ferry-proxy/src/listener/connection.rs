//! One admitted client connection, served as HTTP/1.x with keep-alive,
//! upgrades (CONNECT) and a header-read timeout, its writes bounded by the
//! write-stall timeout; each request goes to [`crate::exchange::handle`].
//! A connection that goes quiet between requests lets go of its HTTP/1
//! state and waits holding only its socket (`super::keep_alive`).

use std::sync::Arc;
use std::time::Duration;

use http::header::UPGRADE;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::keep_alive::{CountedBody, TurnIo, Turns};
use crate::conn::ConnInfo;
use crate::exchange;
use crate::state::ProxyState;
use crate::timeouts::write_stall::WriteStall;

/// Largest request head accepted; beyond it the client gets 431.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// How long a connection with nothing to do keeps its HTTP/1 state before
/// it lets go of it: between one and two of these. Long enough that a
/// client sending request after request never pays for a new turn.
const QUIET_AFTER: Duration = Duration::from_secs(1);

type Socket = WriteStall<TcpStream>;

/// Serves one client connection until it closes; when `stop` turns true the
/// connection finishes its current request and then closes.
pub async fn serve_connection(
    stream: TcpStream,
    conn: ConnInfo,
    state: Arc<ProxyState>,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let peer = conn.peer;
    let idle_limit = state.config.header_timeout();
    let turns: Arc<Turns<Socket>> = Arc::default();
    let conn_info = Arc::new(conn);
    let service_state = state.clone();
    let service_turns = turns.clone();
    let service = hyper::service::service_fn(move |req: http::Request<_>| {
        let upgrade = req.method() == http::Method::CONNECT || req.headers().contains_key(UPGRADE);
        let open = service_turns.request_started(upgrade);
        let answer = exchange::handle(service_state.clone(), conn_info.clone(), req);
        async move {
            let response = answer.await?;
            Ok::<_, std::convert::Infallible>(response.map(|body| CountedBody::new(body, open)))
        }
    });
    let mut socket = WriteStall::new(
        stream,
        state.config.response_timeout(),
        state.config.min_rate(),
    );
    let header_timeout = state.config.header_timeout();
    drop(state);
    loop {
        // Between turns: nothing held but the socket until the client
        // sends its next bytes, closes, or waits past the idle limit.
        tokio::select! {
            biased;
            () = stopped(&mut stop) => return,
            ready = tokio::time::timeout(idle_limit, socket.get_ref().readable()) => {
                if !matches!(ready, Ok(Ok(()))) {
                    return;
                }
            }
        }
        // One turn: hyper's connection over the socket until it ends or
        // the connection goes quiet. Boxed, so that what a turn holds
        // (hyper's state, its timers) is one allocation, freed when the
        // turn ends, and an idle connection's task holds only this wait.
        let result = Box::pin(async {
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_header_size(MAX_HEAD_BYTES);
            let turn = builder
                .serve_connection(
                    TokioIo::new(TurnIo::new(socket, turns.clone())),
                    service.clone(),
                )
                .with_upgrades();
            tokio::pin!(turn);
            let mut quiet = tokio::time::interval(QUIET_AFTER);
            quiet.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            quiet.reset();
            let mut started = turns.started();
            loop {
                tokio::select! {
                    result = turn.as_mut() => break result,
                    _ = quiet.tick() => {
                        let now = turns.started();
                        if now == started && turns.idle() {
                            turns.end_turn_when_quiet();
                        }
                        started = now;
                    }
                    () = stopped(&mut stop) => {
                        turn.as_mut().graceful_shutdown();
                        break turn.as_mut().await;
                    }
                }
            }
        })
        .await;
        if let Err(e) = result {
            tracing::debug!(%peer, error = %e, "client connection ended with an error");
            return;
        }
        match turns.take_socket() {
            Some(back) => {
                tracing::trace!(%peer, "quiet: the connection's HTTP/1 state let go");
                socket = back;
            }
            None => return,
        }
    }
}

/// Resolves when the proxy is stopping.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard wait_for returns is dropped here, not held across awaits.
    let _ = stop.wait_for(|stop| *stop).await;
}
