//! A client that stops reading its response would otherwise hold what the
//! response holds (a fetch slot, a connection) forever: tokio and hyper leave
//! a pending write unbounded. [`WriteStall`] bounds it, and holds the reader
//! to the minimum transfer rate.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::rate::{MinRate, RateMeter};

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

    /// The connection itself (to wait for it to be readable).
    pub fn get_ref(&self) -> &S {
        &self.inner
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

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
}
