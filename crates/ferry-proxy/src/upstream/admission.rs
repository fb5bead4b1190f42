//! Bounded origin fetches with a FIFO queue: at most `max_concurrent` fetches
//! hold a slot; later requests wait in arrival order (tokio's semaphore is fair)
//! and start as slots free. A full queue or a wait past the timeout is refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdmissionError {
    #[error("the proxy's queue of waiting requests is full")]
    QueueFull,
    #[error("waited too long for a free fetch slot")]
    TimedOut,
}

#[derive(Debug)]
pub struct Admission {
    slots: Arc<Semaphore>,
    max_queue: usize,
    timeout: Duration,
    stats: Arc<AdmissionStats>,
}

/// Live counters read by the status page and metrics.
#[derive(Debug, Default)]
pub struct AdmissionStats {
    pub in_flight: AtomicUsize,
    pub queued: AtomicUsize,
    pub rejected: AtomicU64,
    pub admitted: AtomicU64,
}

/// A held fetch slot; the slot frees when this drops (when the upstream body
/// has been fully relayed, not merely when the headers arrived).
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    stats: Arc<AdmissionStats>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.stats.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

struct QueuedGuard<'a>(&'a AdmissionStats);

impl Drop for QueuedGuard<'_> {
    fn drop(&mut self) {
        self.0.queued.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Admission {
    pub fn new(max_concurrent: usize, max_queue: usize, timeout: Duration) -> Admission {
        Admission {
            slots: Arc::new(Semaphore::new(max_concurrent)),
            max_queue,
            timeout,
            stats: Arc::new(AdmissionStats::default()),
        }
    }

    pub fn stats(&self) -> &Arc<AdmissionStats> {
        &self.stats
    }

    /// Waits for a slot in arrival order.
    pub async fn acquire(&self) -> Result<Slot, AdmissionError> {
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                // Reserve a queue place first so the bound holds under races.
                let queued = self.stats.queued.fetch_add(1, Ordering::SeqCst);
                let guard = QueuedGuard(&self.stats);
                if queued >= self.max_queue {
                    drop(guard);
                    self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                    return Err(AdmissionError::QueueFull);
                }
                let waited =
                    tokio::time::timeout(self.timeout, self.slots.clone().acquire_owned()).await;
                drop(guard);
                match waited {
                    Ok(Ok(permit)) => permit,
                    // The semaphore is never closed; treat it like a timeout if it were.
                    Ok(Err(_)) | Err(_) => {
                        self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                        return Err(AdmissionError::TimedOut);
                    }
                }
            }
        };
        self.stats.in_flight.fetch_add(1, Ordering::SeqCst);
        self.stats.admitted.fetch_add(1, Ordering::Relaxed);
        Ok(Slot {
            _permit: permit,
            stats: self.stats.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slots_are_bounded_and_granted_in_arrival_order() {
        let adm = Arc::new(Admission::new(2, 10, Duration::from_secs(5)));
        let a = adm.acquire().await.unwrap();
        let _b = adm.acquire().await.unwrap();
        assert_eq!(adm.stats().in_flight.load(Ordering::SeqCst), 2);
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..4 {
            let adm2 = adm.clone();
            let order = order.clone();
            tasks.push(tokio::spawn(async move {
                let slot = adm2.acquire().await.unwrap();
                order.lock().unwrap().push(i);
                drop(slot);
            }));
            // Let each waiter enqueue before the next arrives.
            while adm.stats().queued.load(Ordering::SeqCst) < i + 1 {
                tokio::task::yield_now().await;
            }
        }
        drop(a);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(adm.stats().queued.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn full_queue_and_timeout_are_refused() {
        let adm = Arc::new(Admission::new(1, 1, Duration::from_millis(50)));
        let _held = adm.acquire().await.unwrap();
        let waiter = {
            let adm = adm.clone();
            tokio::spawn(async move { adm.acquire().await.map(|_| ()) })
        };
        while adm.stats().queued.load(Ordering::SeqCst) < 1 {
            tokio::task::yield_now().await;
        }
        assert_eq!(adm.acquire().await.unwrap_err(), AdmissionError::QueueFull);
        assert_eq!(waiter.await.unwrap().unwrap_err(), AdmissionError::TimedOut);
        assert_eq!(adm.stats().queued.load(Ordering::SeqCst), 0);
    }
}
