//! Collapsed forwarding: the first miss for a URL becomes the leader and
//! fetches it; concurrent misses for the same URL follow, waiting (holding
//! nothing, not even a fetch slot) until the leader's store finishes or gives
//! up, then look the cache up again. Waits are bounded by a timeout so a stuck
//! leader cannot hold followers forever; when it passes, the followers join
//! again rather than all fetching at once: a leader older than the wait is
//! overdue, and the first to join after that leads a fresh fetch that the
//! others follow (one more origin request per wait, not one per follower).
//!
//! A URL whose response turned out not to be storable is remembered for a
//! while ("hit-for-pass", as Varnish calls it): its misses then go straight to
//! the origin instead of queueing behind a leader whose response they could
//! not share anyway. The next storable response clears the mark.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::key::ObjectId;

/// How long an uncacheable URL skips collapsing.
pub const PASS_FOR: Duration = Duration::from_secs(60);
/// Bound on remembered uncacheable URLs; expired ones are dropped beyond it.
const PASSES_MAX: usize = 10_000;

#[derive(Debug)]
pub struct Collapser {
    inflight: Mutex<HashMap<ObjectId, Lead>>,
    passes: Mutex<HashMap<ObjectId, Instant>>,
    /// How long followers wait before a leader counts as overdue.
    wait: Duration,
    next_generation: std::sync::atomic::AtomicU64,
}

/// The current leader of one URL's fetch.
#[derive(Debug)]
struct Lead {
    done: watch::Receiver<bool>,
    started: Instant,
    generation: u64,
}

impl Default for Collapser {
    fn default() -> Self {
        Collapser::new(Duration::from_secs(60))
    }
}

pub enum Collapse {
    Leader(LeaderGuard),
    Follower(Follower),
    /// Recently uncacheable: fetch without collapsing.
    Pass,
}

/// Held by the request that fetches; releasing it (drop) wakes the followers.
#[derive(Debug)]
pub struct LeaderGuard {
    id: ObjectId,
    generation: u64,
    collapser: Arc<Collapser>,
    done: watch::Sender<bool>,
}

impl Drop for LeaderGuard {
    fn drop(&mut self) {
        if let Ok(mut map) = self.collapser.inflight.lock() {
            // An overdue leader may have been replaced: leave the new one.
            if map
                .get(&self.id)
                .is_some_and(|l| l.generation == self.generation)
            {
                map.remove(&self.id);
            }
        }
        let _ = self.done.send(true);
    }
}

pub struct Follower {
    done: watch::Receiver<bool>,
}

impl Follower {
    /// Waits for the leader; `false` if the wait timed out.
    pub async fn wait(mut self, limit: Duration) -> bool {
        tokio::time::timeout(limit, self.done.wait_for(|done| *done))
            .await
            .is_ok()
    }
}

impl Collapser {
    pub fn new(wait: Duration) -> Collapser {
        Collapser {
            inflight: Mutex::default(),
            passes: Mutex::default(),
            wait,
            next_generation: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// How long a follower waits for its leader.
    pub fn collapse_wait(&self) -> Duration {
        self.wait
    }

    pub fn join(self: &Arc<Self>, id: ObjectId) -> Collapse {
        {
            let passes = self.passes.lock().unwrap_or_else(|p| p.into_inner());
            if passes.get(&id).is_some_and(|until| *until > Instant::now()) {
                return Collapse::Pass;
            }
        }
        let mut map = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(lead) = map.get(&id) {
            if lead.started.elapsed() < self.wait {
                return Collapse::Follower(Follower {
                    done: lead.done.clone(),
                });
            }
        }
        let (tx, rx) = watch::channel(false);
        let generation = self
            .next_generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        map.insert(
            id,
            Lead {
                done: rx,
                started: Instant::now(),
                generation,
            },
        );
        Collapse::Leader(LeaderGuard {
            id,
            generation,
            collapser: self.clone(),
            done: tx,
        })
    }

    /// Remembers that `id`'s responses are not storable.
    pub fn mark_pass(&self, id: ObjectId) {
        let mut passes = self.passes.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if passes.len() >= PASSES_MAX {
            passes.retain(|_, until| *until > now);
        }
        if passes.len() < PASSES_MAX {
            passes.insert(id, now + PASS_FOR);
        }
    }

    pub fn clear_pass(&self, id: ObjectId) {
        let mut passes = self.passes.lock().unwrap_or_else(|p| p.into_inner());
        if !passes.is_empty() {
            passes.remove(&id);
        }
    }

    pub fn in_flight(&self) -> usize {
        self.inflight.lock().map(|m| m.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_leader_many_followers_released_together() {
        let c = Arc::new(Collapser::default());
        let id = ObjectId(7);
        let Collapse::Leader(guard) = c.join(id) else {
            panic!("first is the leader")
        };
        let followers: Vec<_> = (0..10)
            .map(|_| match c.join(id) {
                Collapse::Follower(f) => tokio::spawn(f.wait(Duration::from_secs(5))),
                Collapse::Leader(_) | Collapse::Pass => panic!("only one leader"),
            })
            .collect();
        assert!(
            matches!(c.join(ObjectId(8)), Collapse::Leader(_)),
            "other URLs are independent"
        );
        drop(guard);
        for f in followers {
            assert!(f.await.unwrap());
        }
        assert_eq!(c.in_flight(), 0);
        assert!(
            matches!(c.join(id), Collapse::Leader(_)),
            "a new leader after release"
        );
    }

    #[test]
    fn uncacheable_urls_pass_until_cleared() {
        let c = Arc::new(Collapser::default());
        c.mark_pass(ObjectId(3));
        assert!(matches!(c.join(ObjectId(3)), Collapse::Pass));
        assert!(matches!(c.join(ObjectId(4)), Collapse::Leader(_)));
        c.clear_pass(ObjectId(3));
        assert!(matches!(c.join(ObjectId(3)), Collapse::Leader(_)));
    }

    #[tokio::test(start_paused = true)]
    async fn followers_give_up_after_the_timeout() {
        let c = Arc::new(Collapser::default());
        let _leader = c.join(ObjectId(1));
        let Collapse::Follower(f) = c.join(ObjectId(1)) else {
            panic!("follower")
        };
        assert!(!f.wait(Duration::from_secs(30)).await);
    }

    #[test]
    fn an_overdue_leader_is_replaced_once_not_by_every_follower() {
        let c = Arc::new(Collapser::new(Duration::from_millis(30)));
        let id = ObjectId(9);
        let Collapse::Leader(slow) = c.join(id) else {
            panic!("leader")
        };
        assert!(matches!(c.join(id), Collapse::Follower(_)));
        std::thread::sleep(Duration::from_millis(40));
        // The wait is over: the first to join again leads a new fetch ...
        let Collapse::Leader(fresh) = c.join(id) else {
            panic!("an overdue leader is replaced")
        };
        // ... and the others follow it instead of fetching too.
        for _ in 0..10 {
            assert!(matches!(c.join(id), Collapse::Follower(_)));
        }
        // The slow leader finishing does not unseat the new one.
        drop(slow);
        assert!(matches!(c.join(id), Collapse::Follower(_)));
        drop(fresh);
        assert_eq!(c.in_flight(), 0);
    }
}
