//! A tunnel with no traffic in either direction would stay open (and hold
//! its `max_tunnels` place) for as long as both ends keep quiet: an
//! [`IdleWatch`] shared by the streams of one connection says when nothing
//! has moved for a while. A connection that serves requests also counts a
//! request in progress as activity ([`IdleWatch::busy`]): an origin that
//! takes its time to answer does not make the client's connection idle.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// Records the last time bytes moved through any stream sharing it, and
/// how many requests are in progress on them.
#[derive(Clone)]
pub struct IdleWatch {
    origin: Instant,
    last_ms: Arc<AtomicU64>,
    busy: Arc<AtomicUsize>,
}

/// A request in progress: the watch is not idle while one is held.
pub struct Busy(IdleWatch);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
        // Idle time counts from the end of the request.
        self.0.touch();
    }
}

impl IdleWatch {
    pub fn new() -> Self {
        IdleWatch {
            origin: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
            busy: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Marks a request in progress until the guard drops.
    pub fn busy(&self) -> Busy {
        self.busy.fetch_add(1, Ordering::Relaxed);
        Busy(self.clone())
    }

    fn touch(&self) {
        self.last_ms
            .store(self.origin.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let now = self.origin.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }

    /// Resolves once nothing has moved, and no request has been in
    /// progress, for `limit`.
    pub async fn idle(&self, limit: Duration) {
        loop {
            let idle = self.idle_for();
            let busy = self.busy.load(Ordering::Relaxed) > 0;
            if idle >= limit && !busy {
                return;
            }
            // While busy, look again after a whole limit: the request's end
            // restarts the count.
            let wait = if busy { limit } else { limit - idle };
            tokio::time::sleep(wait).await;
        }
    }

    pub fn track<S>(&self, inner: S) -> Tracked<S> {
        Tracked {
            inner,
            watch: self.clone(),
        }
    }
}

/// A stream that reports its traffic to an [`IdleWatch`].
pub struct Tracked<S> {
    inner: S,
    watch: IdleWatch,
}

impl<S> Tracked<S> {
    /// The stream itself (to wait for it to be readable).
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
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
            self.watch.touch();
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
                self.watch.touch();
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
    async fn watch_tracks_traffic_and_reports_idleness() {
        let (a, mut b) = tokio::io::duplex(1024);
        let watch = IdleWatch::new();
        let mut a = watch.track(a);
        a.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        b.read_exact(&mut buf).await.unwrap();
        let started = Instant::now();
        watch.idle(Duration::from_secs(30)).await;
        assert!(started.elapsed() >= Duration::from_secs(29));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_progress_is_not_idle() {
        let watch = IdleWatch::new();
        let busy = watch.busy();
        let started = Instant::now();
        let waiting = tokio::spawn({
            let watch = watch.clone();
            async move { watch.idle(Duration::from_secs(5)).await }
        });
        tokio::time::sleep(Duration::from_secs(12)).await;
        assert!(
            !waiting.is_finished(),
            "idle while a request was in progress"
        );
        drop(busy);
        waiting.await.unwrap();
        assert!(started.elapsed() >= Duration::from_secs(17));
    }
}
