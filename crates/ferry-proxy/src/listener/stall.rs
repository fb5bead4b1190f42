//! Timeouts on waits that tokio and hyper leave unbounded: a client that stops
//! reading its response (which would otherwise hold a fetch slot forever), and a
//! tunnel with no traffic in either direction.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::rate::{MinRate, RateMeter};

/// Wraps a client connection: a write that cannot make progress for `limit`
/// fails with `TimedOut`, which ends the connection and frees what it held.
pub struct WriteStall<S> {
    inner: S,
    limit: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    /// A client that reads, but only a trickle, fails this floor.
    meter: RateMeter,
}

impl<S> WriteStall<S> {
    pub fn new(inner: S, limit: Duration, rate: MinRate) -> Self {
        WriteStall {
            inner,
            limit,
            timer: None,
            meter: RateMeter::new(rate),
        }
    }

    /// Counts what a write moved; fails the write when the client reads
    /// too slowly.
    fn progressed(&mut self, done: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        self.timer = None;
        if let Poll::Ready(Ok(n)) = done {
            if !self.meter.moved(n as u64) {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "client reads too slowly (min-transfer-bytes)",
                )));
            }
        }
        done
    }

    fn pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        // The earlier of: the pause limit, and the moment the rate floor is
        // missed if nothing more moves (a trickling reader may never free
        // enough buffer to wake this writer at all).
        let limit = self
            .meter
            .until_missed()
            .map_or(self.limit, |left| left.min(self.limit));
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "client stopped reading, or reads too slowly (min-transfer-bytes)",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

use std::future::Future as _;

impl<S: AsyncRead + Unpin> AsyncRead for WriteStall<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteStall<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Pending => {
                self.meter.waiting();
                self.pending(cx)
            }
            done => self.progressed(done),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => {
                self.meter.waiting();
                self.pending(cx)
            }
            done => self.progressed(done),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Records the last time bytes moved through any stream sharing it.
#[derive(Clone)]
pub struct Activity {
    origin: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Activity {
    pub fn new() -> Self {
        Activity {
            origin: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    fn touch(&self) {
        self.last_ms
            .store(self.origin.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let now = self.origin.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }

    /// Resolves once nothing has moved for `limit`.
    pub async fn idle(&self, limit: Duration) {
        loop {
            let idle = self.idle_for();
            if idle >= limit {
                return;
            }
            tokio::time::sleep(limit - idle).await;
        }
    }

    pub fn track<S>(&self, inner: S) -> Tracked<S> {
        Tracked {
            inner,
            activity: self.clone(),
        }
    }
}

/// A stream that reports its traffic to an [`Activity`].
pub struct Tracked<S> {
    inner: S,
    activity: Activity,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &result {
            if *n > 0 {
                self.activity.touch();
            }
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_writer_that_is_never_read_times_out() {
        let (client, _server) = tokio::io::duplex(1024);
        let rate = MinRate {
            min_bytes: 0,
            window: Duration::from_secs(60),
        };
        let mut stalled = WriteStall::new(client, Duration::from_secs(5), rate);
        let big = vec![0u8; 64 * 1024];
        let err = stalled.write_all(&big).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test(start_paused = true)]
    async fn activity_tracks_traffic_and_reports_idleness() {
        let (a, mut b) = tokio::io::duplex(1024);
        let activity = Activity::new();
        let mut a = activity.track(a);
        a.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        b.read_exact(&mut buf).await.unwrap();
        let started = Instant::now();
        activity.idle(Duration::from_secs(30)).await;
        assert!(started.elapsed() >= Duration::from_secs(29));
    }
}
