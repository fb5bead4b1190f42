//! One admitted client connection, served as HTTP/1.x with keep-alive,
//! upgrades (CONNECT) and a header-read timeout, its writes bounded by the
//! write-stall timeout; each request goes to [`crate::exchange::handle`].
//! A connection that goes quiet between requests lets go of its HTTP/1
//! state and waits holding only its socket (`crate::turns`).

use std::future::Future;
use std::sync::Arc;

use http::header::UPGRADE;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::conn::{ClientSocket, ConnInfo};
use crate::exchange;
use crate::state::ProxyState;
use crate::timeouts::write_stall::WriteStall;
use crate::turns::{CountedBody, TurnEnd, TurnIo, Turns, drive_turn, read_ready};

/// Largest request head accepted; beyond it the client gets 431.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Serves one client connection until it closes; when `stop` is cancelled
/// the connection finishes its current request and then closes. `keep` is
/// held as long as the connection is open (its place under the caps, the
/// open-connections gauge).
///
/// Not an `async fn`: what an idle connection costs is mostly this task's
/// future, and an `async fn` keeps a slot for every argument for its whole
/// life, even once moved out. So everything is prepared here, and the
/// future holds only what the connection's wait between turns needs.
pub fn serve_connection<K: Send + 'static>(
    stream: TcpStream,
    conn: ConnInfo,
    state: Arc<ProxyState>,
    stop: CancellationToken,
    keep: K,
) -> impl Future<Output = ()> + Send + 'static {
    let _ = stream.set_nodelay(true);
    let idle_limit = state.config.header_timeout();
    let header_timeout = state.config.header_timeout();
    let turns: Arc<Turns<ClientSocket>> = Arc::default();
    let conn_info = Arc::new(conn);
    let service_state = state.clone();
    let service_turns = turns.clone();
    let service_conn = conn_info.clone();
    let service = hyper::service::service_fn(move |req: http::Request<_>| {
        let upgrade = req.method() == http::Method::CONNECT || req.headers().contains_key(UPGRADE);
        let open = service_turns.request_started(upgrade);
        let answer = exchange::handle(service_state.clone(), service_conn.clone(), req);
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
    drop(state);
    async move {
        let _keep = keep;
        loop {
            // Between turns: nothing held but the socket until the client
            // sends its next bytes, closes, or waits past the idle limit.
            tokio::select! {
                biased;
                () = stop.cancelled() => return,
                ready = tokio::time::timeout(idle_limit, read_ready(&socket)) => {
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
                match drive_turn(turn.as_mut(), &turns, stop.cancelled()).await {
                    TurnEnd::Finished(result) => result,
                    TurnEnd::Stopped => {
                        turn.as_mut().graceful_shutdown();
                        turn.await
                    }
                }
            })
            .await;
            if let Err(e) = result {
                tracing::debug!(peer = %conn_info.peer, error = %e, "client connection ended with an error");
                return;
            }
            match turns.take_socket() {
                Some(back) => {
                    tracing::trace!(peer = %conn_info.peer, "quiet: the connection's HTTP/1 state let go");
                    socket = back;
                }
                None => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProxyConfig;

    /// What an idle connection costs is mostly its task: this future. Its
    /// size is fixed when compiled, so this catches a change that makes it
    /// grow (an `async fn`'s argument slots, a bigger wait) without
    /// measuring memory. The figure holds for debug and release builds.
    #[tokio::test]
    async fn an_idle_connection_task_stays_small() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let ((server, peer), _client) =
            tokio::join!(async { listener.accept().await.unwrap() }, async {
                client.await.unwrap()
            });
        let state = ProxyState::for_tests_with(None, ProxyConfig::default());
        let conn = ConnInfo {
            peer,
            intercepted: None,
            health_checks_only: false,
        };
        let task = serve_connection(server, conn, state, CancellationToken::new(), ());
        let size = std::mem::size_of_val(&task);
        eprintln!("a connection's task future: {size} bytes");
        assert!(size <= 640, "a connection's task future is {size} bytes");
    }
}
