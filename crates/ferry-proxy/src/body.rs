//! Response bodies on their way to the client: the boxed body type every
//! response uses, the relay of an upstream body (which holds the fetch slot
//! until the last byte, bounds pauses, and can tee into a [`FrameSink`]), and
//! the wrapper that writes the access-log line when a response is done.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Empty, Full};

use crate::access_log::{AccessLog, AccessRecord};
use crate::admission::Slot;
use crate::metrics::Metrics;
use crate::upstream::{BoxError, UpstreamError};

/// The body type of every response the proxy sends.
pub type ProxyBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty() -> ProxyBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

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
        }
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

use std::future::Future;

/// Counts the bytes sent and writes the access-log line when the response body
/// is finished or dropped (a client that went away is logged too).
pub struct Logged {
    inner: ProxyBody,
    record: Option<AccessRecord>,
    started: Instant,
    log: AccessLog,
    metrics: std::sync::Arc<Metrics>,
}

impl Logged {
    pub fn new(
        inner: ProxyBody,
        record: AccessRecord,
        started: Instant,
        log: AccessLog,
        metrics: std::sync::Arc<Metrics>,
    ) -> Self {
        Logged {
            inner,
            record: Some(record),
            started,
            log,
            metrics,
        }
    }
}

impl Body for Logged {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if let Some(Ok(f)) = &frame {
            if let Some(data) = f.data_ref() {
                let n = data.len() as u64;
                if let Some(r) = self.record.as_mut() {
                    r.bytes += n;
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        if let Some(mut record) = self.record.take() {
            record.duration_ms = self.started.elapsed().as_millis() as u64;
            self.metrics.record_response(&record);
            self.log.record(record);
        }
    }
}
