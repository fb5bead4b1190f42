//! Bounded origin fetches with a fair queue: at most `max_concurrent`
//! fetches hold a slot; later requests wait. Waiting requests keep their
//! arrival order within each client, and clients take turns (round robin),
//! the client whose fetch just ended going last: a client with many slow
//! requests queued cannot make everyone else wait behind all of them, and
//! another client's request starts as soon as a slot frees. A full queue or
//! a wait past the timeout is refused.
//!
//! Hand-written: tokio's semaphore is one FIFO for everybody, and no
//! well-kept crate offers per-key round-robin admission.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::oneshot;

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
    shared: Arc<Shared>,
    max_queue: usize,
    timeout: Duration,
}

#[derive(Debug)]
struct Shared {
    queues: Mutex<Queues>,
    stats: Arc<AdmissionStats>,
}

/// Who waits, per client, and whose turn is next.
#[derive(Debug, Default)]
struct Queues {
    free: usize,
    waiting: HashMap<IpAddr, VecDeque<Waiter>>,
    /// Clients with someone waiting, in turn order.
    turns: VecDeque<IpAddr>,
    /// Slots held, per client (for the dashboard).
    holding: HashMap<IpAddr, usize>,
    next_id: u64,
}

#[derive(Debug)]
struct Waiter {
    id: u64,
    grant: oneshot::Sender<()>,
}

/// Live counters read by the status page and metrics.
#[derive(Debug, Default)]
pub struct AdmissionStats {
    pub in_flight: AtomicUsize,
    pub queued: AtomicUsize,
    pub rejected: AtomicU64,
    pub admitted: AtomicU64,
}

/// A held fetch slot; the slot goes to the next waiter (or back to the free
/// ones) when this drops: when the upstream body has been fully relayed, not
/// merely when the headers arrived.
#[derive(Debug)]
pub struct Slot {
    shared: Arc<Shared>,
    client: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.release(Some(self.client));
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands a freed slot to the next client in turn (after the others,
    /// for the client `from` whose fetch just ended), or keeps it free.
    fn release(&self, from: Option<IpAddr>) {
        let mut q = self.lock();
        if let Some(from) = from {
            q.unhold(from);
        }
        if let Some(at) = from.and_then(|f| q.turns.iter().position(|c| *c == f)) {
            if let Some(client) = q.turns.remove(at) {
                q.turns.push_back(client);
            }
        }
        while let Some(client) = q.turns.pop_front() {
            let Some(line) = q.waiting.get_mut(&client) else {
                continue;
            };
            let waiter = line.pop_front();
            if line.is_empty() {
                q.waiting.remove(&client);
            } else {
                q.turns.push_back(client);
            }
            let Some(waiter) = waiter else { continue };
            self.stats.queued.fetch_sub(1, Ordering::SeqCst);
            // A waiter that gave up is skipped; the slot goes on.
            if waiter.grant.send(()).is_ok() {
                *q.holding.entry(client).or_default() += 1;
                return;
            }
        }
        q.free += 1;
        self.stats.in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    /// Takes a waiter out of the queue if it is still there (it gave up).
    fn withdraw(&self, client: IpAddr, id: u64) -> bool {
        let mut q = self.lock();
        let Some(line) = q.waiting.get_mut(&client) else {
            return false;
        };
        let Some(at) = line.iter().position(|w| w.id == id) else {
            return false;
        };
        line.remove(at);
        if line.is_empty() {
            q.waiting.remove(&client);
            q.turns.retain(|c| *c != client);
        }
        self.stats.queued.fetch_sub(1, Ordering::SeqCst);
        true
    }
}

impl Queues {
    fn unhold(&mut self, client: IpAddr) {
        if let Some(n) = self.holding.get_mut(&client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.holding.remove(&client);
            }
        }
    }
}

/// One client's place at the fetch slots, for the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClientQueue {
    pub client: IpAddr,
    pub holding: usize,
    pub waiting: usize,
}

/// Leaves the queue if the waiting request goes away or times out; if a
/// slot was handed over in that very moment, passes it on. (The grant
/// happens under the queue's lock while the waiter's receiver is alive, so
/// a waiter no longer in the queue was granted a slot.)
struct Withdraw<'a> {
    shared: &'a Shared,
    client: IpAddr,
    id: u64,
    armed: bool,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        if self.armed && !self.shared.withdraw(self.client, self.id) {
            self.shared.release(Some(self.client));
        }
    }
}

impl Admission {
    pub fn new(max_concurrent: usize, max_queue: usize, timeout: Duration) -> Admission {
        Admission {
            shared: Arc::new(Shared {
                queues: Mutex::new(Queues {
                    free: max_concurrent,
                    ..Queues::default()
                }),
                stats: Arc::new(AdmissionStats::default()),
            }),
            max_queue,
            timeout,
        }
    }

    pub fn stats(&self) -> &Arc<AdmissionStats> {
        &self.shared.stats
    }

    /// Every client holding or waiting for a slot, waiting ones in turn
    /// order first.
    pub fn clients(&self) -> Vec<ClientQueue> {
        let q = self.shared.lock();
        let mut out: Vec<ClientQueue> = q
            .turns
            .iter()
            .map(|c| ClientQueue {
                client: *c,
                holding: q.holding.get(c).copied().unwrap_or(0),
                waiting: q.waiting.get(c).map_or(0, VecDeque::len),
            })
            .collect();
        for (c, n) in &q.holding {
            if !q.turns.contains(c) {
                out.push(ClientQueue {
                    client: *c,
                    holding: *n,
                    waiting: 0,
                });
            }
        }
        out
    }

    /// Waits for a slot: in arrival order among `client`'s requests, taking
    /// turns with the other clients.
    pub async fn acquire(&self, client: IpAddr) -> Result<Slot, AdmissionError> {
        let stats = &self.shared.stats;
        let (id, granted) = {
            let mut q = self.shared.lock();
            if q.free > 0 && q.turns.is_empty() {
                q.free -= 1;
                *q.holding.entry(client).or_default() += 1;
                stats.in_flight.fetch_add(1, Ordering::SeqCst);
                stats.admitted.fetch_add(1, Ordering::Relaxed);
                return Ok(Slot {
                    shared: self.shared.clone(),
                    client,
                });
            }
            if stats.queued.load(Ordering::SeqCst) >= self.max_queue {
                stats.rejected.fetch_add(1, Ordering::Relaxed);
                return Err(AdmissionError::QueueFull);
            }
            let (grant, granted) = oneshot::channel();
            q.next_id += 1;
            let id = q.next_id;
            let line = q.waiting.entry(client).or_default();
            let first = line.is_empty();
            line.push_back(Waiter { id, grant });
            if first {
                q.turns.push_back(client);
            }
            stats.queued.fetch_add(1, Ordering::SeqCst);
            (id, granted)
        };
        let mut granted = granted;
        // Declared after `granted`, so it is dropped first, while the
        // receiver still lives.
        let mut withdraw = Withdraw {
            shared: &self.shared,
            client,
            id,
            armed: true,
        };
        match tokio::time::timeout(self.timeout, &mut granted).await {
            Ok(Ok(())) => {
                withdraw.armed = false;
                stats.admitted.fetch_add(1, Ordering::Relaxed);
                Ok(Slot {
                    shared: self.shared.clone(),
                    client,
                })
            }
            _ => {
                // Leaves the queue (passing on a slot granted just now).
                drop(withdraw);
                stats.rejected.fetch_add(1, Ordering::Relaxed);
                Err(AdmissionError::TimedOut)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[tokio::test]
    async fn the_dashboard_sees_who_holds_and_who_waits() {
        let adm = Arc::new(Admission::new(2, 10, Duration::from_secs(5)));
        let a = adm.acquire(ip(1)).await.unwrap();
        let b = adm.acquire(ip(1)).await.unwrap();
        let adm2 = adm.clone();
        let waiter = tokio::spawn(async move { adm2.acquire(ip(2)).await.map(drop) });
        while adm.stats().queued.load(Ordering::SeqCst) < 1 {
            tokio::task::yield_now().await;
        }
        let clients = adm.clients();
        assert_eq!(
            clients,
            vec![
                ClientQueue {
                    client: ip(2),
                    holding: 0,
                    waiting: 1
                },
                ClientQueue {
                    client: ip(1),
                    holding: 2,
                    waiting: 0
                },
            ]
        );
        drop(a);
        waiter.await.unwrap().unwrap();
        drop(b);
        assert!(adm.clients().is_empty(), "{:?}", adm.clients());
    }

    #[tokio::test]
    async fn slots_are_bounded_and_granted_in_arrival_order() {
        let adm = Arc::new(Admission::new(2, 10, Duration::from_secs(5)));
        let a = adm.acquire(ip(1)).await.unwrap();
        let _b = adm.acquire(ip(1)).await.unwrap();
        assert_eq!(adm.stats().in_flight.load(Ordering::SeqCst), 2);
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..4 {
            let adm2 = adm.clone();
            let order = order.clone();
            tasks.push(tokio::spawn(async move {
                let slot = adm2.acquire(ip(1)).await.unwrap();
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
        let _held = adm.acquire(ip(1)).await.unwrap();
        let waiter = {
            let adm = adm.clone();
            tokio::spawn(async move { adm.acquire(ip(1)).await.map(|_| ()) })
        };
        while adm.stats().queued.load(Ordering::SeqCst) < 1 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            adm.acquire(ip(1)).await.unwrap_err(),
            AdmissionError::QueueFull
        );
        assert_eq!(waiter.await.unwrap().unwrap_err(), AdmissionError::TimedOut);
        assert_eq!(adm.stats().queued.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn clients_take_turns_and_keep_their_own_order() {
        let adm = Arc::new(Admission::new(1, 100, Duration::from_secs(5)));
        let held = adm.acquire(ip(1)).await.unwrap();
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        // The greedy client queues five, then a second client arrives.
        let arrivals = [
            (1, 'a'),
            (1, 'b'),
            (1, 'c'),
            (1, 'd'),
            (1, 'e'),
            (2, 'X'),
            (2, 'Y'),
        ];
        for (n, (client, name)) in arrivals.into_iter().enumerate() {
            let adm2 = adm.clone();
            let order = order.clone();
            tasks.push(tokio::spawn(async move {
                let slot = adm2.acquire(ip(client)).await.unwrap();
                order.lock().unwrap().push(name);
                drop(slot);
            }));
            while adm.stats().queued.load(Ordering::SeqCst) < n + 1 {
                tokio::task::yield_now().await;
            }
        }
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(
            *order.lock().unwrap(),
            vec!['X', 'a', 'Y', 'b', 'c', 'd', 'e'],
            "the second client's requests start as slots free, not after the first's"
        );
    }

    #[tokio::test]
    async fn a_waiter_that_goes_away_leaves_the_queue_and_no_slot_is_lost() {
        let adm = Arc::new(Admission::new(1, 10, Duration::from_secs(5)));
        let held = adm.acquire(ip(1)).await.unwrap();
        let gone = {
            let adm = adm.clone();
            tokio::spawn(async move { adm.acquire(ip(2)).await.map(|_| ()) })
        };
        while adm.stats().queued.load(Ordering::SeqCst) < 1 {
            tokio::task::yield_now().await;
        }
        gone.abort();
        let _ = gone.await;
        assert_eq!(adm.stats().queued.load(Ordering::SeqCst), 0);
        drop(held);
        let again = adm.acquire(ip(3)).await.unwrap();
        assert_eq!(adm.stats().in_flight.load(Ordering::SeqCst), 1);
        drop(again);
        assert_eq!(adm.stats().in_flight.load(Ordering::SeqCst), 0);
    }
}
