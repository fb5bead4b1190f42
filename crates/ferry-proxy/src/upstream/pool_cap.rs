//! A global bound on reusable upstream connections. hyper-util's pool
//! bounds idle connections per host only, so a client walking through many
//! hosts could leave thousands idle. Each new connection here counts against
//! one bound for all hosts; once it is reached, further connections are
//! marked not reusable (hyper-util's "poison"), used for one exchange and
//! closed, instead of joining the idle pool.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};

/// Reusable upstream connections open now, against their bound.
#[derive(Debug)]
pub struct PoolCap {
    open: AtomicUsize,
    max: usize,
}

impl PoolCap {
    pub fn new(max: usize) -> Arc<PoolCap> {
        Arc::new(PoolCap {
            open: AtomicUsize::new(0),
            max,
        })
    }

    /// How many reusable connections are open.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Wraps a new connection: reusable if there is room, else single-use.
    pub fn wrap<S>(self: &Arc<Self>, inner: S) -> Capped<S> {
        let counted = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_ok();
        Capped {
            inner,
            cap: counted.then(|| self.clone()),
        }
    }
}

/// A connection counted against the bound while it lives (or single-use).
pub struct Capped<S> {
    inner: S,
    cap: Option<Arc<PoolCap>>,
}

impl<S> Capped<S> {
    /// Whether the connection counts against the bound (may be pooled).
    pub fn is_counted(&self) -> bool {
        self.cap.is_some()
    }
}

impl<S> Drop for Capped<S> {
    fn drop(&mut self) {
        if let Some(cap) = &self.cap {
            cap.open.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl<S: Connection> Connection for Capped<S> {
    fn connected(&self) -> Connected {
        let connected = self.inner.connected();
        if self.cap.is_none() {
            connected.poison();
        }
        connected
    }
}

impl<S: Read + Unpin> Read for Capped<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: Write + Unpin> Write for Capped<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_beyond_the_bound_are_single_use() {
        let cap = PoolCap::new(2);
        let a = cap.wrap(());
        let b = cap.wrap(());
        let c = cap.wrap(());
        assert!(a.cap.is_some() && b.cap.is_some());
        assert!(c.cap.is_none(), "over the bound: not reusable");
        assert_eq!(cap.open(), 2);
        drop(a);
        assert_eq!(cap.open(), 1);
        assert!(cap.wrap(()).cap.is_some());
    }
}
