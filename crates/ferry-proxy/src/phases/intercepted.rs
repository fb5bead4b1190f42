//! The TLS connection inside an intercepted CONNECT: the handshake (within
//! the header timeout) with a leaf for the CONNECT target, then HTTP/2 or
//! HTTP/1.1 (by ALPN) whose every request is handed to the same
//! [`RequestHandler`] as a plain request (the exchange, passed in by the
//! caller), as `https://<CONNECT target><path>`. HTTP/1.1 is served in
//! turns (`crate::turns`), so a quiet connection holds its TLS session and
//! socket but none of hyper's buffers. A connection with no request in
//! progress and no traffic for the tunnel idle timeout is closed: each one
//! holds a `max_tunnels` place.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http::Request;
use http::uri::{Authority, Scheme, Uri};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::server::TlsStream;

use crate::body::{BoxError, ProxyBody};
use crate::conn::{ClientSocket, ConnInfo, Intercepted, RequestHandler};
use crate::host::normalize_host;
use crate::state::ProxyState;
use crate::timeouts::idle::{Busy, IdleWatch, Tracked};
use crate::turns::{OpenRequest, ReadReady, TurnEnd, TurnIo, Turns, drive_turn, read_ready};

/// The client's connection inside the tunnel, as each turn reads it.
type TlsIo = Tracked<TlsStream<ReadAhead>>;

/// What the CONNECT asked for and who asked.
pub struct Target {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub peer: std::net::SocketAddr,
}

/// Terminates the client's TLS on `socket` (after `read_ahead`, what the
/// server read past the CONNECT's head) and hands the requests inside to
/// `handler` until the client closes.
pub async fn serve_intercepted<H: RequestHandler>(
    state: &Arc<ProxyState>,
    socket: ClientSocket,
    read_ahead: Bytes,
    target: Target,
    handler: H,
) {
    let Some(interception) = state.intercept.clone() else {
        return;
    };
    let Some(authority) = authority_of(&target.host, target.port) else {
        return;
    };
    state.metrics.tunnels_intercepted.inc();
    let io = ReadAhead::new(read_ahead, socket);
    let acceptor = tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io);
    // Two steps: a client that sends no ClientHello refused nothing; one that
    // drops or alerts after seeing the proxy's certificate refused it.
    let handshake = async {
        let start = acceptor.await.map_err(Handshake::NoHello)?;
        // The leaf names where the requests go (the CONNECT target), whatever
        // name the client's SNI gives: a client that asks for another name
        // learns that this certificate is not for it.
        let config = interception
            .minter
            .server_config(&target.host)
            .map_err(|e| Handshake::NoHello(std::io::Error::other(e.to_string())))?;
        start.into_stream(config).await.map_err(Handshake::Refused)
    };
    // Boxed: the handshake's state is large and over once done, and the
    // tunnel's task would otherwise keep room for it while it idles.
    let handshake = Box::pin(handshake);
    let watch = IdleWatch::new();
    // The stream goes straight into its wrapper: a local of its own would
    // keep a second slot of its size (1.3 KB) in this task for its life.
    let mut io = match tokio::time::timeout(state.config.header_timeout(), handshake).await {
        Ok(Ok(tls)) => watch.track(tls),
        Ok(Err(Handshake::Refused(e))) if refused_the_certificate(&e) => {
            state.metrics.intercept_refused.inc();
            let host = normalize_host(&target.host);
            let client = target.peer.ip();
            let now = std::time::Instant::now();
            if interception.passthrough.refused(client, &host, now) {
                tracing::warn!(%client, %host, "client keeps refusing the proxy's certificate; passing its tunnels to this site through for a while");
            } else {
                tracing::info!(%client, %host, error = %e, "client refused the proxy's certificate");
            }
            return;
        }
        Ok(Err(Handshake::NoHello(e) | Handshake::Refused(e))) => {
            tracing::debug!(host = %target.host, error = %e, "intercepted TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(host = %target.host, "intercepted TLS handshake timed out");
            return;
        }
    };
    let conn = Arc::new(ConnInfo {
        peer: target.peer,
        intercepted: Some(Intercepted {
            authority,
            user: target.user,
        }),
        health_checks_only: false,
    });
    let h2 = io.get_ref().get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
    let turns: Arc<Turns<TlsIo>> = Arc::default();
    let requests = watch.clone();
    let service_turns = turns.clone();
    let service = hyper::service::service_fn(move |req| {
        // Held until the response body is done with, however long the
        // origin takes: a request in progress is not idleness.
        let busy = requests.busy();
        let open = service_turns.request_started(false);
        let answer = handler.clone().handle(conn.clone(), req);
        async move {
            let resp = answer.await;
            Ok::<_, std::convert::Infallible>(resp.map(|inner| WhileBusy {
                inner,
                _busy: busy,
                _open: open,
            }))
        }
    });
    let idle_limit = state.config.tunnel_idle_timeout();
    let header_timeout = state.config.header_timeout();
    if h2 {
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout);
        // Boxed, as a turn is: the tunnel's task keeps no room for it.
        let mut conn = Box::pin(builder.serve_connection(TokioIo::new(io), service));
        let result = tokio::select! {
            result = conn.as_mut() => result,
            () = watch.idle(idle_limit) => {
                tracing::debug!(host = %target.host, "intercepted connection closed after being idle");
                // HTTP/2 says GOAWAY; a client that does not finish closing
                // in time is dropped.
                conn.as_mut().graceful_shutdown();
                tokio::time::timeout(idle_limit, conn.as_mut())
                    .await
                    .unwrap_or(Ok(()))
            }
        };
        if let Err(e) = result {
            tracing::debug!(host = %target.host, error = %e, "intercepted connection ended with an error");
        }
        return;
    }
    // HTTP/1.1, in turns. The first starts at once: the client's first
    // request may have come with the end of the handshake, and rustls may
    // hold it already.
    loop {
        // Boxed: what a turn holds is one allocation, freed when it ends.
        let result = Box::pin(async {
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let turn = builder.serve_connection(
                TokioIo::new(TurnIo::new(io, turns.clone())),
                service.clone(),
            );
            tokio::pin!(turn);
            match drive_turn(turn.as_mut(), &turns, watch.idle(idle_limit)).await {
                TurnEnd::Finished(result) => result,
                TurnEnd::Stopped => {
                    tracing::debug!(host = %target.host, "intercepted connection closed after being idle");
                    // HTTP/1.1 just closes; a client that does not finish
                    // closing in time is dropped.
                    turn.as_mut().graceful_shutdown();
                    tokio::time::timeout(idle_limit, turn)
                        .await
                        .unwrap_or(Ok(()))
                }
            }
        })
        .await;
        if let Err(e) = result {
            tracing::debug!(host = %target.host, error = %e, "intercepted connection ended with an error");
            return;
        }
        match turns.take_socket() {
            Some(back) => io = back,
            None => return,
        }
        // Between turns: the TLS session and the socket, nothing else,
        // until the client sends its next bytes or stays quiet too long.
        tokio::select! {
            biased;
            ready = read_ready(&io) => {
                if ready.is_err() {
                    return;
                }
            }
            () = watch.idle(idle_limit) => {
                tracing::debug!(host = %target.host, "intercepted connection closed after being idle");
                return;
            }
        }
    }
}

/// The client's socket with what the server had read past the CONNECT's
/// head (a client may send its ClientHello without waiting for the `200`).
struct ReadAhead {
    read_ahead: Bytes,
    socket: ClientSocket,
}

impl ReadAhead {
    fn new(read_ahead: Bytes, socket: ClientSocket) -> Self {
        ReadAhead {
            // Even empty, what the server read ahead can keep its whole
            // read buffer (8 KiB) alive: let go of it.
            read_ahead: if read_ahead.is_empty() {
                Bytes::new()
            } else {
                read_ahead
            },
            socket,
        }
    }
}

impl AsyncRead for ReadAhead {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.read_ahead.has_remaining() {
            let n = this.read_ahead.len().min(buf.remaining());
            buf.put_slice(&this.read_ahead[..n]);
            this.read_ahead.advance(n);
            if this.read_ahead.is_empty() {
                this.read_ahead = Bytes::new();
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.socket).poll_read(cx, buf)
    }
}

impl AsyncWrite for ReadAhead {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().socket).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().socket).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.socket.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().socket).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().socket).poll_shutdown(cx)
    }
}

impl ReadReady for ReadAhead {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.read_ahead.has_remaining() {
            return Poll::Ready(Ok(()));
        }
        self.socket.poll_read_ready(cx)
    }
}

/// A response body that keeps its request counted as in progress (for the
/// idle limit, and for the turn) until it is done with.
struct WhileBusy {
    inner: ProxyBody,
    _busy: Busy,
    _open: OpenRequest<TlsIo>,
}

impl http_body::Body for WhileBusy {
    type Data = bytes::Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, BoxError>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

enum Handshake {
    NoHello(std::io::Error),
    Refused(std::io::Error),
}

/// Whether a handshake that failed after the proxy sent its certificate
/// failed because the client would not accept it: a certificate alert, or
/// the connection dropped (what many pinned apps do).
fn refused_the_certificate(e: &std::io::Error) -> bool {
    use rustls::AlertDescription as A;
    if matches!(
        e.kind(),
        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
    ) {
        return true;
    }
    matches!(
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        Some(rustls::Error::AlertReceived(
            A::BadCertificate
                | A::UnsupportedCertificate
                | A::CertificateRevoked
                | A::CertificateExpired
                | A::CertificateUnknown
                | A::UnknownCA
                | A::AccessDenied
        ))
    )
}

/// `host` or `host:port` as an `https://` URL's authority (no port for 443,
/// brackets around an IPv6 address).
fn authority_of(host: &str, port: u16) -> Option<Authority> {
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let text = if port == 443 {
        host
    } else {
        format!("{host}:{port}")
    };
    text.parse().ok()
}

/// Makes a request inside the tunnel the absolute `https://` request it
/// stands for: always the CONNECT's origin (a `Host` or `:authority` naming
/// another would let a client reach, under one certificate, a host the rules
/// were never asked about for this tunnel).
pub fn to_origin_url(req: &mut Request<Incoming>, authority: &Authority) {
    let mut parts = req.uri().clone().into_parts();
    parts.scheme = Some(Scheme::HTTPS);
    parts.authority = Some(authority.clone());
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
    }
    if let Ok(uri) = Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
    // HTTP/2 carries the authority in the URI; HTTP/1.1's Host must agree.
    if req.version() < http::Version::HTTP_2 {
        if let Ok(host) = http::HeaderValue::from_str(authority.as_str()) {
            req.headers_mut().insert(http::header::HOST, host);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn authorities_read_as_in_a_url() {
        let a = |h: &str, p| authority_of(h, p).map(|a| a.to_string());
        assert_eq!(a("shop.test", 443).as_deref(), Some("shop.test"));
        assert_eq!(a("shop.test", 8443).as_deref(), Some("shop.test:8443"));
        assert_eq!(a("::1", 443).as_deref(), Some("[::1]"));
        assert_eq!(a("[::1]", 8443).as_deref(), Some("[::1]:8443"));
        assert_eq!(a("bad host", 443), None);
    }

    /// Answers every request with an empty `200`.
    #[derive(Clone)]
    struct Empty;

    impl RequestHandler for Empty {
        fn handle(
            self,
            _conn: Arc<ConnInfo>,
            _req: Request<Incoming>,
        ) -> impl std::future::Future<Output = http::Response<ProxyBody>> + Send + 'static {
            std::future::ready(http::Response::new(crate::body::empty()))
        }
    }

    /// What a quiet intercepted connection costs is mostly its task, and
    /// this future is most of that. Its size is fixed when compiled, so
    /// this catches a change that makes it grow (a hyper connection or the
    /// handshake held inline, a second slot for the TLS stream) without
    /// measuring memory.
    #[tokio::test]
    async fn an_intercepted_connection_task_stays_small() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap());
        let ((server, peer), _client) =
            tokio::join!(async { listener.accept().await.unwrap() }, async {
                client.await.unwrap()
            });
        let state = ProxyState::for_tests_with(None, crate::config::ProxyConfig::default());
        let socket = crate::timeouts::write_stall::WriteStall::new(
            server,
            state.config.response_timeout(),
            state.config.min_rate(),
        );
        let target = Target {
            host: "shop.test".into(),
            port: 443,
            user: None,
            peer,
        };
        let task = serve_intercepted(&state, socket, Bytes::new(), target, Empty);
        let size = std::mem::size_of_val(&task);
        eprintln!("an intercepted connection's future: {size} bytes");
        assert!(
            size <= 3072,
            "an intercepted connection's future is {size} bytes"
        );
    }
}
