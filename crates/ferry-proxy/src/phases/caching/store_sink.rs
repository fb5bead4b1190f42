//! The tee from a relayed upstream body into the cache: every data frame is
//! handed to the store writer; the object becomes visible (and collapsed
//! followers are released) once the store has completed. [`relay_storing`]
//! is the one way a response is relayed while it is stored.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use ferry_cache::{Hit, LeaderGuard, StoreWriter};
use http::{Response, request};

use super::served::{CacheRequest, Served};
use crate::body::ProxyBody;
use crate::outcome::{CacheOutcome, Fwd};
use crate::phases::forward::{self, Fetched};
use crate::state::ProxyState;
use crate::upstream::FrameSink;

pub struct StoreSink {
    writer: StoreWriter,
    /// Released when the store is done, so followers find the object.
    guard: Option<LeaderGuard>,
}

impl StoreSink {
    pub fn boxed(writer: StoreWriter, guard: Option<LeaderGuard>) -> Box<dyn FrameSink> {
        Box::new(StoreSink { writer, guard })
    }
}

impl FrameSink for StoreSink {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.writer.poll_ready(cx)
    }

    fn data(&mut self, chunk: &Bytes) {
        self.writer.push(chunk);
    }

    fn finish(self: Box<Self>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let StoreSink { writer, guard } = *self;
        Box::pin(async move {
            if let Err(e) = writer.finish().await {
                tracing::debug!(error = %e, "response not stored");
            }
            drop(guard);
        })
    }
}

/// Relays `fetched`, teeing its body into `sink`. A response without a body
/// (a 204, an empty 200) is never polled for one by the server side, so its
/// store completes here, before it is sent.
pub async fn relay_storing(
    state: &ProxyState,
    host: &str,
    fetched: Fetched,
    sink: Option<Box<dyn FrameSink>>,
) -> Response<ProxyBody> {
    let sink = match sink {
        Some(sink) if http_body::Body::is_end_stream(&fetched.body) => {
            sink.finish().await;
            None
        }
        sink => sink,
    };
    forward::relay(state, host, fetched, sink)
}

/// The one relay-and-store path, for misses and for revalidations that
/// brought a new representation: the response streams to the client and,
/// if the rules allow, into the cache, replacing what was stored. When the
/// new response forbids storing, the stale copy it `replaces` is removed.
pub async fn store_and_relay(
    cx: CacheRequest<'_>,
    parts: &request::Parts,
    fetched: Fetched,
    guard: Option<LeaderGuard>,
    fwd: Fwd,
    replaces: Option<&Hit>,
) -> Served {
    let fwd_status = fetched.head.status.as_u16();
    let times = (fetched.request_time, fetched.response_time);
    let stored = cx
        .cache
        .begin_store_ruled(cx.key, parts, &fetched.head, times, cx.freshness())
        .await;
    let mut rule = None;
    let (sink, outcome) = match stored {
        Ok(writer) => {
            rule = cx.rule_deciding(&fetched.head);
            (
                Some(StoreSink::boxed(writer, guard)),
                CacheOutcome::Stored { fwd, fwd_status },
            )
        }
        Err(reason) => {
            if let Some(stale) = replaces.filter(|_| reason.is_about_the_response()) {
                cx.cache.evict(stale).await;
            }
            (
                None,
                CacheOutcome::NotStored {
                    fwd,
                    fwd_status,
                    reason,
                },
            )
        }
    };
    let resp = relay_storing(cx.state, cx.host, fetched, sink).await;
    Served::new(Ok(resp), outcome).by_rule(rule)
}
