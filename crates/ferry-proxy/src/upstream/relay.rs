//! Relaying an upstream body to the client: the relay holds the fetch slot
//! until the last byte, fails the body when the origin pauses too long, and
//! can tee every frame into a [`FrameSink`] (the cache's store writer),
//! waiting for it when it falls behind so memory stays bounded.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::admission::Slot;
use super::client::UpstreamError;
use crate::body::BoxError;
use crate::timeouts::rate::{MinRate, RateMeter};

/// Receives a copy of every data frame of an upstream body (the cache's store
/// writer). `finish` is called only when the body ended cleanly; the future it
/// returns completes when the copy is safely kept.
pub trait FrameSink: Send {
    /// Ready when the sink can take another frame; the relay does not read
    /// further from the origin until it is.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()>;
    fn data(&mut self, chunk: &Bytes);
    fn finish(self: Box<Self>) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// Relays an upstream body: keeps the fetch slot until the body ends, fails the
/// body if the origin pauses longer than `idle`, and feeds an optional sink.
///
/// With a sink, the last frame is held back until the sink has finished, so a
/// client that has received the whole response finds it in the cache on its
/// next request.
pub struct Relay<B> {
    inner: B,
    slot: Option<Slot>,
    idle: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    host: String,
    sink: Option<Box<dyn FrameSink>>,
    held: Option<Frame<Bytes>>,
    finishing: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    ended: bool,
    /// The origin's minimum rate, if one is enforced.
    meter: Option<RateMeter>,
}

impl<B> Relay<B> {
    pub fn new(inner: B, slot: Option<Slot>, idle: Duration, host: String) -> Self {
        Relay {
            inner,
            slot,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
            host,
            sink: None,
            held: None,
            finishing: None,
            ended: false,
            meter: None,
        }
    }

    /// Fails the body if the origin trickles: less than the floor in a window
    /// of waiting for it.
    pub fn with_min_rate(mut self, rate: MinRate) -> Self {
        self.meter = Some(RateMeter::new(rate));
        self
    }

    pub fn with_sink(mut self, sink: Option<Box<dyn FrameSink>>) -> Self {
        self.sink = sink;
        self
    }
}

impl<B> Body for Relay<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if let Some(finishing) = this.finishing.as_mut() {
                ready!(finishing.as_mut().poll(cx));
                this.finishing = None;
                this.ended = true;
            }
            if this.ended {
                return Poll::Ready(this.held.take().map(Ok));
            }
            if let Some(sink) = this.sink.as_mut() {
                ready!(sink.poll_ready(cx));
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => {
                    if let Some(meter) = this.meter.as_mut() {
                        meter.waiting();
                    }
                    if this.timer.as_mut().poll(cx).is_ready() {
                        this.sink = None;
                        this.slot = None;
                        this.held = None;
                        return Poll::Ready(Some(Err(Box::new(UpstreamError::BodyTimeout {
                            host: this.host.clone(),
                            secs: this.idle.as_secs(),
                        }))));
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Some(Ok(frame))) => {
                    let deadline = tokio::time::Instant::now() + this.idle;
                    this.timer.as_mut().reset(deadline);
                    let len = frame.data_ref().map_or(0, |d| d.len() as u64);
                    if let Some(meter) = this.meter.as_mut() {
                        if !meter.moved(len) {
                            let rate = meter.rate();
                            this.sink = None;
                            this.slot = None;
                            this.held = None;
                            return Poll::Ready(Some(Err(Box::new(UpstreamError::TooSlow {
                                host: this.host.clone(),
                                min_bytes: rate.min_bytes,
                                secs: rate.window.as_secs(),
                            }))));
                        }
                    }
                    let Some(sink) = this.sink.as_mut() else {
                        return Poll::Ready(Some(Ok(frame)));
                    };
                    // An empty frame (HTTP/2 often ends a stream with one) must
                    // not displace the held frame: the client's side stops
                    // reading once the last byte of a sized body is written.
                    if frame.data_ref().is_some_and(|d| d.is_empty()) {
                        continue;
                    }
                    if let Some(data) = frame.data_ref() {
                        sink.data(data);
                    }
                    if let Some(previous) = this.held.replace(frame) {
                        return Poll::Ready(Some(Ok(previous)));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    // A broken upstream body must never be stored: drop the sink unfinished.
                    this.sink = None;
                    this.slot = None;
                    this.held = None;
                    return Poll::Ready(Some(Err(e.into())));
                }
                Poll::Ready(None) => {
                    this.slot = None;
                    match this.sink.take() {
                        Some(sink) => this.finishing = Some(sink.finish()),
                        None => this.ended = true,
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.held.is_none()
            && self.finishing.is_none()
            && self.sink.is_none()
            && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let held = self
            .held
            .as_ref()
            .and_then(|f| f.data_ref())
            .map(|d| d.len() as u64)
            .unwrap_or(0);
        let inner = self.inner.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + held);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + held);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use http_body_util::BodyExt;
    use tokio::sync::{mpsc, oneshot};

    use super::*;
    use crate::upstream::admission::Admission;

    /// An upstream body fed frame by frame from the test; counts what the
    /// relay has read from it.
    struct ChannelBody {
        rx: mpsc::UnboundedReceiver<Result<Frame<Bytes>, BoxError>>,
        read: Arc<AtomicUsize>,
    }

    impl Body for ChannelBody {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            let frame = ready!(self.rx.poll_recv(cx));
            if frame.is_some() {
                self.read.fetch_add(1, Ordering::SeqCst);
            }
            Poll::Ready(frame)
        }
    }

    type Feed = mpsc::UnboundedSender<Result<Frame<Bytes>, BoxError>>;

    fn channel_body() -> (Feed, ChannelBody, Arc<AtomicUsize>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let read = Arc::new(AtomicUsize::new(0));
        (
            tx,
            ChannelBody {
                rx,
                read: read.clone(),
            },
            read,
        )
    }

    fn data(text: &'static str) -> Result<Frame<Bytes>, BoxError> {
        Ok(Frame::data(Bytes::from_static(text.as_bytes())))
    }

    /// What a test sink saw, and the switches that drive it.
    #[derive(Default)]
    struct SinkLog {
        chunks: Mutex<Vec<Bytes>>,
        finished: AtomicBool,
        dropped: AtomicBool,
        blocked: AtomicBool,
    }

    struct TestSink {
        log: Arc<SinkLog>,
        /// `finish` completes once this fires.
        release: Option<oneshot::Receiver<()>>,
    }

    impl Drop for TestSink {
        fn drop(&mut self) {
            self.log.dropped.store(true, Ordering::SeqCst);
        }
    }

    impl FrameSink for TestSink {
        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
            if self.log.blocked.load(Ordering::SeqCst) {
                // Polled again by the test's own wake-up below.
                cx.waker().wake_by_ref();
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        }

        fn data(&mut self, chunk: &Bytes) {
            self.log.chunks.lock().unwrap().push(chunk.clone());
        }

        fn finish(mut self: Box<Self>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
            let log = self.log.clone();
            let release = self.release.take();
            Box::pin(async move {
                if let Some(release) = release {
                    let _ = release.await;
                }
                log.finished.store(true, Ordering::SeqCst);
            })
        }
    }

    fn sink(release: Option<oneshot::Receiver<()>>) -> (Box<dyn FrameSink>, Arc<SinkLog>) {
        let log = Arc::new(SinkLog::default());
        (
            Box::new(TestSink {
                log: log.clone(),
                release,
            }),
            log,
        )
    }

    const IDLE: Duration = Duration::from_secs(30);

    /// A queue of one slot, and that slot.
    async fn one_slot() -> (Admission, Slot) {
        let admission = Admission::new(1, 1, Duration::from_secs(1));
        let slot = admission
            .acquire(std::net::IpAddr::from([127, 0, 0, 1]))
            .await
            .unwrap();
        (admission, slot)
    }

    async fn next_data(relay: &mut Relay<ChannelBody>) -> Option<Bytes> {
        let frame = relay.frame().await?.ok()?;
        frame.into_data().ok()
    }

    #[tokio::test]
    async fn the_last_frame_waits_until_the_store_is_complete() {
        let (feed, body, _) = channel_body();
        let (release_tx, release_rx) = oneshot::channel();
        let (sink, log) = sink(Some(release_rx));
        let mut relay = Relay::new(body, None, IDLE, "origin.test".into()).with_sink(Some(sink));
        feed.send(data("one")).unwrap();
        feed.send(data("two")).unwrap();
        // An empty frame (HTTP/2 often ends a stream with one) must not
        // displace the held frame.
        feed.send(data("")).unwrap();
        drop(feed);
        assert_eq!(next_data(&mut relay).await.unwrap(), "one");
        // "two" is held back while the sink finishes.
        let mut last = Box::pin(next_data(&mut relay));
        tokio::select! {
            _ = &mut last => panic!("the last frame came out before the store finished"),
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
        assert!(!log.finished.load(Ordering::SeqCst));
        release_tx.send(()).unwrap();
        assert_eq!(last.await.unwrap(), "two");
        assert!(log.finished.load(Ordering::SeqCst));
        assert!(
            relay.frame().await.is_none(),
            "the body ends after the held frame"
        );
        let stored: Vec<Bytes> = log.chunks.lock().unwrap().clone();
        assert_eq!(stored, vec![Bytes::from("one"), Bytes::from("two")]);
    }

    #[tokio::test]
    async fn a_slow_sink_stops_the_relay_reading_from_the_origin() {
        let (feed, body, read) = channel_body();
        let (sink, log) = sink(None);
        let mut relay = Relay::new(body, None, IDLE, "origin.test".into()).with_sink(Some(sink));
        for _ in 0..3 {
            feed.send(data("x")).unwrap();
        }
        drop(feed);
        log.blocked.store(true, Ordering::SeqCst);
        let waited = tokio::time::timeout(Duration::from_millis(100), relay.frame()).await;
        assert!(waited.is_err(), "no frame while the sink is not ready");
        assert_eq!(
            read.load(Ordering::SeqCst),
            0,
            "nothing read from the origin"
        );
        log.blocked.store(false, Ordering::SeqCst);
        let body = relay.collect().await.unwrap().to_bytes();
        assert_eq!(body, "xxx");
        assert_eq!(read.load(Ordering::SeqCst), 3);
        assert!(log.finished.load(Ordering::SeqCst));
    }

    #[tokio::test(start_paused = true)]
    async fn an_origin_that_pauses_too_long_fails_the_body_and_frees_the_slot() {
        let (admission, slot) = one_slot().await;
        assert_eq!(admission.stats().in_flight.load(Ordering::SeqCst), 1);
        let (feed, body, _) = channel_body();
        let (sink, log) = sink(None);
        let mut relay =
            Relay::new(body, Some(slot), IDLE, "origin.test".into()).with_sink(Some(sink));
        feed.send(data("start")).unwrap();
        // The first frame is held for the sink; the relay then waits on the origin.
        let err = relay.frame().await.unwrap().unwrap_err();
        let err = err.downcast::<UpstreamError>().unwrap();
        assert_eq!(
            *err,
            UpstreamError::BodyTimeout {
                host: "origin.test".into(),
                secs: 30
            }
        );
        assert_eq!(admission.stats().in_flight.load(Ordering::SeqCst), 0);
        assert!(log.dropped.load(Ordering::SeqCst), "the store is abandoned");
        assert!(!log.finished.load(Ordering::SeqCst), "and never completed");
        drop(feed);
    }

    #[tokio::test]
    async fn a_broken_upstream_body_is_never_stored() {
        let (admission, slot) = one_slot().await;
        let (feed, body, _) = channel_body();
        let (sink, log) = sink(None);
        let mut relay =
            Relay::new(body, Some(slot), IDLE, "origin.test".into()).with_sink(Some(sink));
        feed.send(data("part")).unwrap();
        feed.send(Err("connection reset".into())).unwrap();
        assert!(relay.frame().await.unwrap().is_err());
        assert!(log.dropped.load(Ordering::SeqCst));
        assert!(!log.finished.load(Ordering::SeqCst));
        assert_eq!(admission.stats().in_flight.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn the_slot_is_held_until_the_body_ends() {
        let (admission, slot) = one_slot().await;
        let (feed, body, _) = channel_body();
        let mut relay = Relay::new(body, Some(slot), IDLE, "origin.test".into());
        feed.send(data("a")).unwrap();
        assert_eq!(next_data(&mut relay).await.unwrap(), "a");
        assert_eq!(admission.stats().in_flight.load(Ordering::SeqCst), 1);
        drop(feed);
        assert!(relay.frame().await.is_none());
        assert_eq!(admission.stats().in_flight.load(Ordering::SeqCst), 0);
    }
}
