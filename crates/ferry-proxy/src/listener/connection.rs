//! One admitted client connection, served as HTTP/1.x with keep-alive,
//! upgrades (CONNECT) and a header-read timeout, its writes bounded by the
//! write-stall timeout; each request goes to [`crate::exchange::handle`].

use std::sync::Arc;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::conn::ConnInfo;
use crate::exchange;
use crate::state::ProxyState;
use crate::timeouts::write_stall::WriteStall;

/// Largest request head accepted; beyond it the client gets 431.
const MAX_HEAD_BYTES: usize = 64 * 1024;

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
    let conn_info = Arc::new(conn);
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
