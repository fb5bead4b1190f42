//! What lets a quiet HTTP/1 connection cost almost nothing, plain or inside
//! an intercepted tunnel's TLS. hyper's HTTP/1 server keeps a connection's
//! read and write buffers (8 KiB or more each) and its state for as long as
//! the connection is open, and offers no way to release them between
//! requests (its read buffer is reserved before it asks the socket for
//! bytes). So each connection is served in *turns*: a turn is one hyper
//! connection over [`TurnIo`], and when the client has sent nothing for a
//! while, every response is written and the last bytes read ended a
//! message, the next read that would wait reports end of stream instead.
//! hyper then finishes cleanly without closing the socket (its shutdown is
//! not passed on), the socket comes back through [`Turns::take_socket`], and
//! the connection waits ([`ReadReady`]) for the client's next bytes holding
//! only the socket. Busy connections never end a turn, so the request path
//! is unchanged for them.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::body::{BoxError, ProxyBody};
use crate::timeouts::idle::Tracked;
use crate::timeouts::write_stall::WriteStall;

/// How long a connection with nothing to do keeps its HTTP/1 state before
/// it lets go of it: between one and two of these. Long enough that a
/// client sending request after request never pays for a new turn.
const QUIET_AFTER: Duration = Duration::from_secs(1);

/// The end of a request head, or of a chunked body: a message's last bytes.
const MESSAGE_END: u32 = u32::from_be_bytes(*b"\r\n\r\n");

/// What a connection's turns share with the hyper connection of the turn in
/// progress: its requests and their responses, and the socket handed back.
pub struct Turns<S> {
    /// Requests whose response has not been written to the end.
    open: AtomicUsize,
    /// Requests started on this connection.
    started: AtomicU64,
    /// Set once a request takes the connection over (CONNECT, Upgrade): it
    /// is a tunnel from then on, and its reads are never cut.
    upgraded: AtomicBool,
    /// Set when the connection has been quiet long enough: the next read
    /// that would wait ends the turn.
    end_turn: AtomicBool,
    /// The socket, handed back when a turn ends (boxed only then, so the
    /// slot costs a pointer for the connection's whole life).
    socket: Mutex<Option<Box<S>>>,
}

impl<S> Default for Turns<S> {
    fn default() -> Self {
        Turns {
            open: AtomicUsize::new(0),
            started: AtomicU64::new(0),
            upgraded: AtomicBool::new(false),
            end_turn: AtomicBool::new(false),
            socket: Mutex::new(None),
        }
    }
}

impl<S> Turns<S> {
    /// Counts a request in; the guard counts its response out when dropped
    /// (hyper drops a response body once it is written, or abandoned).
    pub fn request_started(self: &Arc<Self>, upgrade: bool) -> OpenRequest<S> {
        if upgrade {
            self.upgraded.store(true, Ordering::Release);
        }
        self.started.fetch_add(1, Ordering::Relaxed);
        self.open.fetch_add(1, Ordering::AcqRel);
        OpenRequest(self.clone())
    }

    /// Requests started so far: unchanged across a tick means no new work.
    pub fn started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// Whether every response has been written.
    pub fn idle(&self) -> bool {
        self.open.load(Ordering::Acquire) == 0
    }

    /// Asks the turn in progress to end at its next read that would wait.
    pub fn end_turn_when_quiet(&self) {
        self.end_turn.store(true, Ordering::Release);
    }

    /// The socket of a turn that ended by quiet, `None` when the connection
    /// itself ended (the client closed it, an error, an upgrade).
    pub fn take_socket(&self) -> Option<S> {
        self.end_turn.store(false, Ordering::Relaxed);
        self.socket
            .lock()
            .ok()
            .and_then(|mut slot| slot.take())
            .map(|socket| *socket)
    }
}

/// One open request; dropping it counts its response as written.
pub struct OpenRequest<S>(Arc<Turns<S>>);

impl<S> Drop for OpenRequest<S> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that counts its request as open until hyper drops it.
pub struct CountedBody<S> {
    inner: ProxyBody,
    _open: OpenRequest<S>,
}

impl<S> CountedBody<S> {
    pub fn new(inner: ProxyBody, open: OpenRequest<S>) -> Self {
        CountedBody { inner, _open: open }
    }
}

impl<S> Body for CountedBody<S> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The socket as one turn's hyper connection sees it.
pub struct TurnIo<S> {
    inner: Option<S>,
    turns: Arc<Turns<S>>,
    /// The last four bytes read (big-endian), to tell a message's end.
    tail: u32,
    /// The last write could not finish: bytes are waiting in hyper.
    write_pending: bool,
    /// This turn ended by quiet: the socket goes back, not closed.
    ended: bool,
}

impl<S> TurnIo<S> {
    pub fn new(socket: S, turns: Arc<Turns<S>>) -> Self {
        TurnIo {
            inner: Some(socket),
            turns,
            // A turn starts between messages (the socket may have been
            // reported readable with nothing to read yet).
            tail: MESSAGE_END,
            write_pending: false,
            ended: false,
        }
    }

    /// The socket itself, for a connection taken over by an upgrade (the
    /// turns end there: a tunnel is never cut).
    pub fn into_socket(mut self) -> Option<S> {
        self.inner.take()
    }

    /// Whether a read that would wait may end the turn instead: asked to,
    /// nothing left to write, not a tunnel, and the bytes read so far ended
    /// a message (so hyper holds no part of the next one).
    fn may_end_turn(&self) -> bool {
        self.tail == MESSAGE_END
            && !self.write_pending
            && self.turns.end_turn.load(Ordering::Acquire)
            && self.turns.idle()
            && !self.turns.upgraded.load(Ordering::Acquire)
    }
}

impl<S> Drop for TurnIo<S> {
    fn drop(&mut self) {
        if self.ended {
            if let (Some(socket), Ok(mut slot)) = (self.inner.take(), self.turns.socket.lock()) {
                *slot = Some(Box::new(socket));
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TurnIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(Ok(()));
        }
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let before = buf.filled().len();
        match Pin::new(inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let got = &buf.filled()[before..];
                if !got.is_empty() {
                    // The client spoke: it is not quiet any more.
                    this.turns.end_turn.store(false, Ordering::Relaxed);
                }
                for &b in &got[got.len().saturating_sub(4)..] {
                    this.tail = (this.tail << 8) | u32::from(b);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if this.may_end_turn() => {
                this.ended = true;
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TurnIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        let result = Pin::new(inner).poll_write(cx, buf);
        this.write_pending = result.is_pending();
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        let result = Pin::new(inner).poll_write_vectored(cx, bufs);
        this.write_pending = result.is_pending();
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.inner.as_mut() {
            Some(inner) => Pin::new(inner).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.inner.as_mut() {
            // The connection goes on in the next turn.
            Some(_) if this.ended => Poll::Ready(Ok(())),
            Some(inner) => Pin::new(inner).poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}

/// How [`drive_turn`] came back.
pub enum TurnEnd<R> {
    /// hyper's connection finished: the client closed, an error, or the
    /// turn ended by quiet (then [`Turns::take_socket`] has the socket).
    Finished(R),
    /// `stop` came first; the turn is still the caller's to shut down.
    Stopped,
}

/// Drives one turn (hyper's connection future) until it finishes or `stop`
/// resolves, asking it to end once the connection has had nothing to do
/// for between one and two [`QUIET_AFTER`]s.
pub async fn drive_turn<S, F: Future>(
    mut turn: Pin<&mut F>,
    turns: &Turns<S>,
    stop: impl Future<Output = ()>,
) -> TurnEnd<F::Output> {
    let mut quiet = tokio::time::interval(QUIET_AFTER);
    quiet.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    quiet.reset();
    let mut started = turns.started();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            result = turn.as_mut() => return TurnEnd::Finished(result),
            _ = quiet.tick() => {
                let now = turns.started();
                if now == started && turns.idle() {
                    turns.end_turn_when_quiet();
                }
                started = now;
            }
            () = &mut stop => return TurnEnd::Stopped,
        }
    }
}

/// A connection that can say when the client has sent something, without
/// a buffer to read it into: what a connection waits on between turns.
/// (A readiness poll, not `readable()`: that future carries a waiter node
/// of its own, 150 bytes on every idle connection.)
pub trait ReadReady {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

impl ReadReady for TcpStream {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        TcpStream::poll_read_ready(self, cx)
    }
}

impl<S: ReadReady> ReadReady for WriteStall<S> {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_ref().poll_read_ready(cx)
    }
}

impl<S: ReadReady> ReadReady for Tracked<S> {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_ref().poll_read_ready(cx)
    }
}

/// The client's TLS: ready when the socket under it is. Between turns
/// rustls holds no plaintext (a turn ends only on a read that would wait),
/// at most part of a record whose rest the socket will bring.
impl<S: ReadReady> ReadReady for tokio_rustls::server::TlsStream<S> {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_ref().0.poll_read_ready(cx)
    }
}

/// Waits until `socket` has something to read (or has failed).
pub async fn read_ready<S: ReadReady>(socket: &S) -> io::Result<()> {
    std::future::poll_fn(|cx| socket.poll_read_ready(cx)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_quiet_turn_ends_only_after_a_whole_message_and_hands_the_socket_back() {
        let (client, server) = tokio::io::duplex(1024);
        let turns: Arc<Turns<tokio::io::DuplexStream>> = Arc::default();
        let mut io = TurnIo::new(server, turns.clone());
        let mut client = client;
        let mut buf = [0u8; 64];

        // Part of a head: a read that would wait keeps waiting.
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n")
            .await
            .unwrap();
        let n = io.read(&mut buf).await.unwrap();
        assert_eq!(n, 25);
        turns.end_turn_when_quiet();
        let waited = tokio::time::timeout(std::time::Duration::from_millis(50), io.read(&mut buf));
        assert!(waited.await.is_err(), "mid-message, the read must wait");

        // The rest of the head, while a response is open: still waits.
        client.write_all(b"\r\n").await.unwrap();
        assert_eq!(io.read(&mut buf).await.unwrap(), 2);
        let open = turns.request_started(false);
        let waited = tokio::time::timeout(std::time::Duration::from_millis(50), io.read(&mut buf));
        assert!(waited.await.is_err(), "a response is open");

        // Response written, message ended, but the client spoke since the
        // last ask: still waits. Asked again: the turn ends.
        drop(open);
        let waited = tokio::time::timeout(std::time::Duration::from_millis(50), io.read(&mut buf));
        assert!(waited.await.is_err(), "bytes came after the ask");
        turns.end_turn_when_quiet();
        assert_eq!(io.read(&mut buf).await.unwrap(), 0);
        io.shutdown().await.unwrap();
        drop(io);
        let mut socket = turns.take_socket().expect("the socket comes back");
        client.write_all(b"next").await.unwrap();
        assert_eq!(socket.read(&mut buf).await.unwrap(), 4, "still open");
    }

    #[tokio::test]
    async fn a_tunnel_is_never_cut() {
        let (mut client, server) = tokio::io::duplex(1024);
        let turns: Arc<Turns<tokio::io::DuplexStream>> = Arc::default();
        let mut io = TurnIo::new(server, turns.clone());
        let mut buf = [0u8; 64];
        client
            .write_all(b"CONNECT a:443 HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        let mut head = [0u8; 26];
        io.read_exact(&mut head).await.unwrap();
        drop(turns.request_started(true));
        turns.end_turn_when_quiet();
        let waited = tokio::time::timeout(std::time::Duration::from_millis(50), io.read(&mut buf));
        assert!(waited.await.is_err());
        drop(io);
        assert!(turns.take_socket().is_none(), "a closed turn keeps nothing");
    }
}
