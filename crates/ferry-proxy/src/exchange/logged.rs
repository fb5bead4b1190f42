//! The log phase: the response body, counted as it goes out; when it ends
//! or is dropped (a client that went away is logged too), the exchange's
//! record becomes one access-log line and the metrics' update.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::body::{BoxError, ProxyBody};
use crate::outcome::AccessRecord;
use crate::telemetry::Metrics;
use crate::telemetry::access_log::{AccessLog, log_finished};

pub struct Logged {
    inner: ProxyBody,
    record: Option<AccessRecord>,
    started: Instant,
    log: AccessLog,
    metrics: Arc<Metrics>,
}

impl Logged {
    pub fn new(
        inner: ProxyBody,
        record: AccessRecord,
        started: Instant,
        log: AccessLog,
        metrics: Arc<Metrics>,
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
        if let Some(Ok(data)) = frame.as_ref().map(|f| f.as_ref().map(Frame::data_ref)) {
            let n = data.map_or(0, |d| d.len() as u64);
            if let Some(r) = self.record.as_mut() {
                r.bytes += n;
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
        if let Some(record) = self.record.take() {
            log_finished(record, self.started, &self.log, &self.metrics);
        }
    }
}
