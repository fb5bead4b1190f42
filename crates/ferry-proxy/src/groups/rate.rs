//! Per-client transfer rates and byte counting for groups with a `rate` or
//! a `daily_quota`: a [`Meter`] is made once per request for such a client
//! and wraps the bytes that move (a response or upload body with
//! [`Metered`], a tunnel's client side with [`MeteredIo`]); every other
//! client's bytes are never wrapped and pay nothing.
//!
//! The pacing is a virtual clock per client and direction ([`Pacer`],
//! GCRA-style): each chunk reserves the time it takes at the client's rate
//! after the chunks reserved before it, whichever connection they were on,
//! so a client's connections share its rate in the order they asked, and
//! no other client waits on it. Unused time carries over only a little
//! (`BURST`), so a client that was quiet does not get a burst of seconds.
//! Hand-written: the rate-limit crates (governor and the like) count
//! requests, not bytes of a stream, and none wraps a body and a socket.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::quota::Counter;

/// How much of a quiet client's unused time may be spent at once.
const BURST: Duration = Duration::from_millis(100);
/// Past this many clients, those with no transfer under way are forgotten.
const PRUNE_AT: usize = 4096;

/// One client's clock for one direction.
#[derive(Debug)]
pub struct Pacer {
    bytes_per_second: u64,
    /// When the bytes reserved so far will have moved.
    next: Mutex<Instant>,
}

impl Pacer {
    pub fn new(bytes_per_second: u64) -> Pacer {
        Pacer {
            bytes_per_second: bytes_per_second.max(1),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Reserves `bytes`; how long to wait before they may move.
    pub fn reserve(&self, bytes: usize) -> Duration {
        let now = Instant::now();
        let cost_ns = (bytes as u128 * 1_000_000_000) / u128::from(self.bytes_per_second);
        let cost = Duration::from_nanos(u64::try_from(cost_ns).unwrap_or(u64::MAX));
        let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        let start = (*next).max(now.checked_sub(BURST).unwrap_or(now));
        let done = start + cost;
        *next = done;
        // The chunk may move once its own share has begun.
        start.saturating_duration_since(now)
    }

    /// The largest piece a body is cut into, so one large frame does not
    /// move as one burst: a tenth of a second's worth, at least 4 KiB.
    fn piece(&self) -> usize {
        usize::try_from(self.bytes_per_second / 10)
            .unwrap_or(usize::MAX)
            .clamp(4096, 256 * 1024)
    }
}

/// The pacers of every paced client (by client: address or user name).
#[derive(Debug, Default)]
pub struct Rates {
    clients: Mutex<HashMap<String, Arc<ClientPacers>>>,
}

/// A client's two directions.
#[derive(Debug)]
pub struct ClientPacers {
    /// To the client (responses, a tunnel's downloads).
    pub down: Arc<Pacer>,
    /// From the client (uploads, a tunnel's uploads).
    pub up: Arc<Pacer>,
}

impl Rates {
    /// `client`'s pacers at `bytes_per_second`, shared by all its requests
    /// under way (a changed rate takes effect for the next transfer).
    pub fn pacers(&self, client: &str, bytes_per_second: u64) -> Arc<ClientPacers> {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(p) = clients.get(client) {
            if p.down.bytes_per_second == bytes_per_second {
                return p.clone();
            }
        }
        if clients.len() >= PRUNE_AT {
            clients.retain(|_, p| Arc::strong_count(p) > 1);
        }
        let pacers = Arc::new(ClientPacers {
            down: Arc::new(Pacer::new(bytes_per_second)),
            up: Arc::new(Pacer::new(bytes_per_second)),
        });
        clients.insert(client.to_string(), pacers.clone());
        pacers
    }
}

/// What one request's bytes are counted against and paced by.
#[derive(Debug, Clone, Default)]
pub struct Meter {
    pub pacers: Option<Arc<ClientPacers>>,
    /// The client's bytes today, when its group has a quota.
    pub counter: Option<Counter>,
}

impl Meter {
    pub fn is_idle(&self) -> bool {
        self.pacers.is_none() && self.counter.is_none()
    }

    fn down(&self) -> Option<Arc<Pacer>> {
        self.pacers.as_ref().map(|p| p.down.clone())
    }

    fn up(&self) -> Option<Arc<Pacer>> {
        self.pacers.as_ref().map(|p| p.up.clone())
    }

    /// A body going to the client.
    pub fn downloading<B>(&self, body: B) -> Metered<B> {
        Metered::new(body, self.down(), self.counter.clone())
    }

    /// A body coming from the client.
    pub fn uploading<B>(&self, body: B) -> Metered<B> {
        Metered::new(body, self.up(), self.counter.clone())
    }

    /// A tunnel's client side: reads are uploads, writes downloads.
    pub fn stream<S>(&self, io: S) -> MeteredIo<S> {
        MeteredIo {
            io,
            up: self.up(),
            down: self.down(),
            counter: self.counter.clone(),
            read_wait: None,
            write_wait: None,
        }
    }
}

fn count(counter: &Option<Counter>, bytes: usize) {
    if let Some(c) = counter {
        c.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// A body counted into a quota and paced: each data frame is cut into
/// pieces, and each piece is let through when its time at the rate comes.
pub struct Metered<B> {
    inner: B,
    pacer: Option<Arc<Pacer>>,
    counter: Option<Counter>,
    /// Data received and not yet let through.
    pending: Bytes,
    /// The wait before `pending`'s next piece.
    wait: Option<Pin<Box<Sleep>>>,
    piece: Option<Bytes>,
}

impl<B> Metered<B> {
    fn new(inner: B, pacer: Option<Arc<Pacer>>, counter: Option<Counter>) -> Metered<B> {
        Metered {
            inner,
            pacer,
            counter,
            pending: Bytes::new(),
            wait: None,
            piece: None,
        }
    }
}

impl<B> Body for Metered<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        loop {
            if let Some(wait) = this.wait.as_mut() {
                ready!(wait.as_mut().poll(cx));
                this.wait = None;
                if let Some(piece) = this.piece.take() {
                    return Poll::Ready(Some(Ok(Frame::data(piece))));
                }
            }
            if !this.pending.is_empty() {
                let Some(pacer) = &this.pacer else {
                    let all = std::mem::take(&mut this.pending);
                    return Poll::Ready(Some(Ok(Frame::data(all))));
                };
                let n = pacer.piece().min(this.pending.len());
                let piece = this.pending.split_to(n);
                let wait = pacer.reserve(n);
                if wait.is_zero() {
                    return Poll::Ready(Some(Ok(Frame::data(piece))));
                }
                this.piece = Some(piece);
                this.wait = Some(Box::pin(tokio::time::sleep(wait)));
                continue;
            }
            let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
            match frame {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        count(&this.counter, data.len());
                        this.pending = data;
                        if this.pending.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(Bytes::new()))));
                        }
                    }
                    Err(other) => return Poll::Ready(Some(Ok(other))),
                },
                other => return Poll::Ready(other),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_empty() && self.piece.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let mut hint = self.inner.size_hint();
        let held = (self.pending.len() + self.piece.as_ref().map_or(0, Bytes::len)) as u64;
        hint.set_lower(hint.lower().saturating_add(held));
        if let Some(upper) = hint.upper() {
            hint.set_upper(upper.saturating_add(held));
        }
        hint
    }
}

/// A tunnel's client side, counted and paced. After each read or write the
/// next one waits for the time those bytes take at the client's rate.
pub struct MeteredIo<S> {
    io: S,
    up: Option<Arc<Pacer>>,
    down: Option<Arc<Pacer>>,
    counter: Option<Counter>,
    read_wait: Option<Pin<Box<Sleep>>>,
    write_wait: Option<Pin<Box<Sleep>>>,
}

fn after(pacer: &Option<Arc<Pacer>>, bytes: usize) -> Option<Pin<Box<Sleep>>> {
    let pacer = pacer.as_ref()?;
    let wait = pacer.reserve(bytes);
    // The reservation covers these bytes' own time too: wait for its end.
    let own = Duration::from_nanos(
        u64::try_from((bytes as u128 * 1_000_000_000) / u128::from(pacer.bytes_per_second))
            .unwrap_or(u64::MAX),
    );
    Some(Box::pin(tokio::time::sleep(wait + own)))
}

impl<S: AsyncRead + Unpin> AsyncRead for MeteredIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(wait) = this.read_wait.as_mut() {
            ready!(wait.as_mut().poll(cx));
            this.read_wait = None;
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        let n = buf.filled().len() - before;
        count(&this.counter, n);
        if n > 0 {
            this.read_wait = after(&this.up, n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for MeteredIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if let Some(wait) = this.write_wait.as_mut() {
            ready!(wait.as_mut().poll(cx));
            this.write_wait = None;
        }
        let n = ready!(Pin::new(&mut this.io).poll_write(cx, buf))?;
        count(&this.counter, n);
        if n > 0 {
            this.write_wait = after(&this.down, n);
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};
    use std::sync::atomic::AtomicU64;

    #[tokio::test(start_paused = true)]
    async fn a_body_moves_at_the_rate_and_is_counted() {
        let rates = Rates::default();
        let counter: Counter = Arc::new(AtomicU64::new(0));
        let meter = Meter {
            pacers: Some(rates.pacers("10.1.2.3", 100_000)),
            counter: Some(counter.clone()),
        };
        let start = Instant::now();
        let body = meter.downloading(Full::new(Bytes::from(vec![7u8; 500_000])));
        let got = body.collect().await.unwrap().to_bytes();
        assert_eq!(got.len(), 500_000);
        assert!(got.iter().all(|b| *b == 7));
        let took = start.elapsed();
        // 5 s at the rate, less the first piece and the small burst.
        assert!(took >= Duration::from_millis(4700), "{took:?}");
        assert!(took <= Duration::from_millis(5200), "{took:?}");
        assert_eq!(counter.load(Ordering::Relaxed), 500_000);
    }

    #[tokio::test(start_paused = true)]
    async fn a_clients_connections_share_its_rate_and_others_do_not_wait() {
        let rates = Rates::default();
        let a = Meter {
            pacers: Some(rates.pacers("a", 100_000)),
            counter: None,
        };
        let a2 = Meter {
            pacers: Some(rates.pacers("a", 100_000)),
            counter: None,
        };
        let b = Meter {
            pacers: Some(rates.pacers("b", 100_000)),
            counter: None,
        };
        let start = Instant::now();
        let body = |m: &Meter| {
            let m = m.clone();
            async move {
                m.downloading(Full::new(Bytes::from(vec![0u8; 200_000])))
                    .collect()
                    .await
                    .unwrap();
                start.elapsed()
            }
        };
        let (a_took, a2_took, b_took) = tokio::join!(body(&a), body(&a2), body(&b));
        // a's two bodies share 100 kB/s: 400 kB take about 4 s; b alone 2 s.
        assert!(
            a_took.max(a2_took) >= Duration::from_millis(3700),
            "{a_took:?} {a2_took:?}"
        );
        assert!(b_took <= Duration::from_millis(2200), "{b_took:?}");
        assert!(b_took >= Duration::from_millis(1700), "{b_took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_is_paced_both_ways() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let rates = Rates::default();
        let counter: Counter = Arc::new(AtomicU64::new(0));
        let meter = Meter {
            pacers: Some(rates.pacers("c", 50_000)),
            counter: Some(counter.clone()),
        };
        let (near, mut far) = tokio::io::duplex(1 << 20);
        let mut paced = meter.stream(near);
        let start = Instant::now();
        let writer = tokio::spawn(async move {
            for _ in 0..25 {
                paced.write_all(&[1u8; 4000]).await.unwrap();
            }
            paced
        });
        let mut got = vec![0u8; 100_000];
        far.read_exact(&mut got).await.unwrap();
        let mut paced = writer.await.unwrap();
        assert!(
            start.elapsed() >= Duration::from_millis(1800),
            "{:?}",
            start.elapsed()
        );
        far.write_all(&[2u8; 100_000]).await.unwrap();
        let up = Instant::now();
        let mut read = 0;
        let mut chunk = [0u8; 8192];
        while read < 100_000 {
            read += paced.read(&mut chunk).await.unwrap();
        }
        assert!(
            up.elapsed() >= Duration::from_millis(1700),
            "{:?}",
            up.elapsed()
        );
        assert_eq!(counter.load(Ordering::Relaxed), 200_000);
    }

    #[test]
    fn the_pruned_book_keeps_clients_under_way() {
        let rates = Rates::default();
        let kept = rates.pacers("busy", 1000);
        for i in 0..PRUNE_AT + 5 {
            rates.pacers(&format!("c{i}"), 1000);
        }
        assert!(Arc::ptr_eq(&kept, &rates.pacers("busy", 1000)));
        assert!(rates.clients.lock().unwrap().len() < PRUNE_AT);
    }
}
