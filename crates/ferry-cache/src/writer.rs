//! Storing a response while it streams to the client (the tee). The proxy
//! hands each body chunk to [`StoreWriter::push`] without waiting; a blocking
//! task writes them to a temporary file. When the disk falls behind, the
//! proxy waits on [`StoreWriter::poll_ready`] before reading more from the
//! origin, so memory stays bounded without giving up the store. Only
//! [`StoreWriter::finish`], called when the upstream body ended cleanly, makes
//! the object visible (trailer, length check, atomic rename). Dropping the
//! writer or a body longer than allowed abandons the store and leaves nothing
//! behind.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::entry::Entry;
use crate::error::CacheError;
use crate::inner::Inner;
use crate::key::ObjectId;
use crate::meta::Meta;
use crate::store::disk::{self, TempObject};
use crate::store::index::{About, Usage, tick};

/// Most body bytes queued for the disk before the relay waits for it: bounds
/// memory when the disk is slower than the network.
const QUEUE_LIMIT: u64 = 8 << 20;

/// Bytes handed to the writer task and not yet written, and who waits for
/// them to drain.
#[derive(Default)]
struct Queue {
    bytes: AtomicU64,
    waiter: futures_util::task::AtomicWaker,
}

enum Msg {
    Data(Bytes),
    Finish(oneshot::Sender<Result<(), CacheError>>),
}

pub struct StoreWriter {
    tx: Option<mpsc::UnboundedSender<Msg>>,
    queued: Arc<Queue>,
}

/// Where and what a store writes.
pub(crate) struct Plan {
    pub id: ObjectId,
    pub meta: Meta,
    /// A vary marker to write at the primary id once the variant is stored.
    pub marker: Option<(ObjectId, Meta)>,
    /// From `Content-Length`: the body must have exactly this many bytes.
    pub expected_len: Option<u64>,
}

impl StoreWriter {
    pub(crate) fn start(inner: Arc<Inner>, plan: Plan) -> StoreWriter {
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(Queue::default());
        let q = queued.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = write(&inner, plan, rx, &q) {
                inner
                    .counters
                    .store_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "cache store failed; the response was still delivered");
            }
        });
        StoreWriter {
            tx: Some(tx),
            queued,
        }
    }

    /// Queues a copy of a body chunk for the disk.
    pub fn push(&mut self, chunk: &Bytes) {
        let Some(tx) = &self.tx else { return };
        self.queued
            .bytes
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        if tx.send(Msg::Data(chunk.clone())).is_err() {
            tracing::debug!("cache store abandoned: the writer failed");
            self.tx = None;
        }
    }

    /// Ready when the disk has caught up enough to take more; the caller
    /// should not read more of the body until then.
    pub fn poll_ready(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        if self.tx.is_none() || self.queued.bytes.load(Ordering::Acquire) <= QUEUE_LIMIT {
            return std::task::Poll::Ready(());
        }
        self.queued.waiter.register(cx.waker());
        if self.queued.bytes.load(Ordering::Acquire) <= QUEUE_LIMIT {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    }

    /// Whether the store has already been given up.
    pub fn is_abandoned(&self) -> bool {
        self.tx.is_none()
    }

    /// The body ended cleanly: complete the object and make it visible.
    pub async fn finish(mut self) -> Result<(), CacheError> {
        let Some(tx) = self.tx.take() else {
            return Err(CacheError::Corrupt("store abandoned".into()));
        };
        let (reply, done) = oneshot::channel();
        tx.send(Msg::Finish(reply))
            .map_err(|_| CacheError::Corrupt("store failed".into()))?;
        done.await
            .map_err(|_| CacheError::Corrupt("store failed".into()))?
    }
}

fn write(
    inner: &Arc<Inner>,
    plan: Plan,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    queued: &Queue,
) -> Result<(), CacheError> {
    // Whatever happens, never leave the relay waiting on a writer that is gone.
    struct WakeOnExit<'a>(&'a Queue);
    impl Drop for WakeOnExit<'_> {
        fn drop(&mut self) {
            self.0.bytes.store(0, Ordering::Release);
            self.0.waiter.wake();
        }
    }
    let _wake = WakeOnExit(queued);
    let dir = &inner.cfg.dir;
    let mut temp = TempObject::create(dir, plan.id, &plan.meta)?;
    let keep_in_memory = inner.cfg.memory_object_max;
    let mut memory: Option<Vec<u8>> = Some(Vec::new());
    while let Some(msg) = rx.blocking_recv() {
        match msg {
            Msg::Data(chunk) => {
                let left = queued.bytes.fetch_sub(chunk.len() as u64, Ordering::AcqRel)
                    - chunk.len() as u64;
                if left <= QUEUE_LIMIT {
                    queued.waiter.wake();
                }
                if temp.body_len() + chunk.len() as u64 > inner.cfg.max_object_size {
                    return Err(CacheError::Corrupt("larger than max_object_size".into()));
                }
                temp.write(&chunk)?;
                if let Some(buf) = memory.as_mut() {
                    if buf.len() + chunk.len() <= keep_in_memory as usize {
                        buf.extend_from_slice(&chunk);
                    } else {
                        memory = None;
                    }
                }
            }
            Msg::Finish(reply) => {
                let result = commit(inner, &plan, temp, memory);
                let failed = result.as_ref().err().map(|e| e.to_string());
                let _ = reply.send(result);
                return match failed {
                    Some(e) => Err(CacheError::Corrupt(e)),
                    None => Ok(()),
                };
            }
        }
    }
    // The sender went away without finishing: the response broke off.
    Ok(())
}

fn commit(
    inner: &Arc<Inner>,
    plan: &Plan,
    temp: TempObject,
    memory: Option<Vec<u8>>,
) -> Result<(), CacheError> {
    let body_len = temp.body_len();
    if let Some(expected) = plan.expected_len {
        if expected != body_len {
            return Err(CacheError::Corrupt(format!(
                "body has {body_len} bytes, Content-Length said {expected}"
            )));
        }
    }
    let size = temp.commit(&disk::object_path(&inner.cfg.dir, plan.id))?;
    // A new response: its hits count from zero.
    let usage = Usage::new(tick());
    inner
        .index
        .insert(plan.id, size, usage.clone(), About::of(&plan.meta));
    if let Some((marker_id, marker)) = &plan.marker {
        let marker_size = disk::write_small(&inner.cfg.dir, *marker_id, marker)?;
        let marker_usage = Usage::new(tick());
        inner.index.insert(
            *marker_id,
            marker_size,
            marker_usage.clone(),
            About::of(marker),
        );
        inner.remember(Entry::new(
            *marker_id,
            marker.clone(),
            0,
            None,
            Some(marker_usage),
            inner.cfg.heuristic_max,
        ));
    }
    inner.remember(Entry::new(
        plan.id,
        plan.meta.clone(),
        body_len,
        memory.map(Bytes::from),
        Some(usage),
        inner.cfg.heuristic_max,
    ));
    inner.counters.stores.fetch_add(1, Ordering::Relaxed);
    inner.wake_evictor();
    Ok(())
}
