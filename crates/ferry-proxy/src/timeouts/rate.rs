//! Minimum transfer rates: a peer that keeps a transfer alive by sending
//! (or reading) a trickle would otherwise hold what it holds (a fetch slot,
//! a connection) for as long as it likes, since a pause timeout resets at
//! every byte. The rule: over every `window` of time spent waiting on the
//! peer, at least `min_bytes` must move. Time the proxy itself is busy, or
//! waits on the other side, does not count. The defaults (1 KiB a minute,
//! about 17 bytes a second) cut off only deliberate trickles, never a real
//! download on a slow link.

use std::time::{Duration, Instant};

/// The floor: at least `min_bytes` per `window` of waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinRate {
    pub min_bytes: u64,
    pub window: Duration,
}

/// Measures one direction of one transfer against a [`MinRate`].
#[derive(Debug)]
pub struct RateMeter {
    rate: MinRate,
    waited: Duration,
    bytes: u64,
    waiting_since: Option<Instant>,
}

impl RateMeter {
    pub fn new(rate: MinRate) -> RateMeter {
        RateMeter {
            rate,
            waited: Duration::ZERO,
            bytes: 0,
            waiting_since: None,
        }
    }

    pub fn rate(&self) -> MinRate {
        self.rate
    }

    /// The peer has nothing for us (or takes nothing) right now.
    pub fn waiting(&mut self) {
        self.waiting_since.get_or_insert_with(Instant::now);
    }

    /// While waiting: how long until a whole window of waiting will have
    /// passed with fewer bytes than the floor, if nothing more moves.
    pub fn until_missed(&self) -> Option<Duration> {
        let since = self.waiting_since?;
        if self.bytes >= self.rate.min_bytes {
            return None;
        }
        let waited = self.waited + since.elapsed();
        Some(self.rate.window.saturating_sub(waited))
    }

    /// `n` bytes moved; `false` once a whole window of waiting moved fewer
    /// bytes than the floor.
    pub fn moved(&mut self, n: u64) -> bool {
        // Only progress that ends a wait counts: bytes that moved at once
        // (into a buffer, say) say nothing about the peer's pace.
        let Some(since) = self.waiting_since.take() else {
            return true;
        };
        self.waited += since.elapsed();
        self.bytes = self.bytes.saturating_add(n);
        if self.waited < self.rate.window {
            return true;
        }
        let enough = self.bytes >= self.rate.min_bytes;
        self.waited = Duration::ZERO;
        self.bytes = 0;
        enough
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trickle_fails_and_a_slow_but_real_transfer_does_not() {
        let rate = MinRate {
            min_bytes: 100,
            window: Duration::from_millis(40),
        };
        let mut trickle = RateMeter::new(rate);
        let mut cut = false;
        for _ in 0..4 {
            trickle.waiting();
            std::thread::sleep(Duration::from_millis(15));
            cut |= !trickle.moved(1);
        }
        assert!(cut, "a trickle is cut off");
        let mut steady = RateMeter::new(rate);
        for _ in 0..8 {
            steady.waiting();
            std::thread::sleep(Duration::from_millis(15));
            assert!(
                steady.moved(64),
                "64 bytes per 15 ms is well above the floor"
            );
        }
        // Time not spent waiting on the peer does not count, and neither do
        // bytes that moved without waiting.
        let mut busy = RateMeter::new(rate);
        std::thread::sleep(Duration::from_millis(60));
        assert!(busy.moved(1));
        let mut burst = RateMeter::new(rate);
        assert!(burst.moved(1 << 20));
        burst.waiting();
        assert!(
            burst.until_missed().is_some(),
            "a burst before the wait does not count"
        );
    }
}
