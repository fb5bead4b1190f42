//! Automatic, time-limited passthrough: when one client refuses the minted
//! certificate for a site several times in a short while (a pinned app, a
//! device without the CA), that client's tunnels to that site pass through
//! untouched for a while, then interception is tried again. Kept per client
//! and site, so one client's refusals never switch interception off for
//! anyone else (and so never open a way around the URL rules for others).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Refusals within [`WINDOW`] that switch a client and site to passthrough.
pub const THRESHOLD: u32 = 3;
pub const WINDOW: Duration = Duration::from_secs(300);
/// How long the passthrough lasts before interception is tried again.
pub const HOLD: Duration = Duration::from_secs(600);
/// Most client-and-site pairs tracked; beyond it the oldest are forgotten.
const CAPACITY: usize = 10_000;

#[derive(Debug, Default)]
pub struct AutoPassthrough {
    pairs: Mutex<HashMap<(IpAddr, String), Pair>>,
}

#[derive(Debug, Clone, Copy)]
struct Pair {
    refusals: u32,
    first: Instant,
    until: Option<Instant>,
}

/// One pair in passthrough now, for the status page.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Passing {
    pub client: IpAddr,
    pub host: String,
    pub seconds_left: u64,
}

impl AutoPassthrough {
    /// Counts a refused handshake; true when this one switched the pair to
    /// passthrough.
    pub fn refused(&self, client: IpAddr, host: &str, now: Instant) -> bool {
        let Ok(mut pairs) = self.pairs.lock() else {
            return false;
        };
        if pairs.len() >= CAPACITY {
            forget_oldest(&mut pairs, now);
        }
        let pair = pairs.entry((client, host.to_string())).or_insert(Pair {
            refusals: 0,
            first: now,
            until: None,
        });
        if now.duration_since(pair.first) > WINDOW {
            *pair = Pair {
                refusals: 0,
                first: now,
                until: None,
            };
        }
        pair.refusals += 1;
        if pair.refusals >= THRESHOLD && pair.until.is_none() {
            pair.until = Some(now + HOLD);
            return true;
        }
        false
    }

    /// Whether `client`'s tunnels to `host` pass through now.
    pub fn active(&self, client: IpAddr, host: &str, now: Instant) -> bool {
        let Ok(mut pairs) = self.pairs.lock() else {
            return false;
        };
        if pairs.is_empty() {
            return false;
        }
        let key = (client, host.to_string());
        match pairs.get(&key).and_then(|p| p.until) {
            Some(until) if until > now => true,
            Some(_) => {
                // Expired: interception is tried again, from a clean count.
                pairs.remove(&key);
                false
            }
            None => false,
        }
    }

    /// The pairs in passthrough now.
    pub fn list(&self, now: Instant) -> Vec<Passing> {
        let Ok(pairs) = self.pairs.lock() else {
            return Vec::new();
        };
        let mut list: Vec<Passing> = pairs
            .iter()
            .filter_map(|((client, host), p)| {
                let until = p.until.filter(|u| *u > now)?;
                Some(Passing {
                    client: *client,
                    host: host.clone(),
                    seconds_left: until.duration_since(now).as_secs(),
                })
            })
            .collect();
        list.sort_by(|a, b| (&a.host, a.client).cmp(&(&b.host, b.client)));
        list
    }
}

/// Drops expired pairs, or if none, the tenth that started counting first.
fn forget_oldest(pairs: &mut HashMap<(IpAddr, String), Pair>, now: Instant) {
    let before = pairs.len();
    pairs.retain(|_, p| p.until.is_some_and(|u| u > now) || now.duration_since(p.first) <= WINDOW);
    if pairs.len() < before {
        return;
    }
    let mut firsts: Vec<Instant> = pairs.values().map(|p| p.first).collect();
    firsts.sort();
    if let Some(&cut) = firsts.get(firsts.len() / 10) {
        pairs.retain(|_, p| p.first > cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_refusals_pass_one_client_through_for_a_while_only() {
        let auto = AutoPassthrough::default();
        let (alice, bob) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        let t0 = Instant::now();
        assert!(!auto.refused(alice, "bank.test", t0));
        assert!(!auto.refused(alice, "bank.test", t0 + Duration::from_secs(1)));
        assert!(!auto.active(alice, "bank.test", t0 + Duration::from_secs(2)));
        assert!(auto.refused(alice, "bank.test", t0 + Duration::from_secs(2)));
        let soon = t0 + Duration::from_secs(3);
        assert!(auto.active(alice, "bank.test", soon));
        assert!(!auto.active(bob, "bank.test", soon), "another client");
        assert!(!auto.active(alice, "shop.test", soon), "another site");
        assert_eq!(auto.list(soon).len(), 1);
        let later = t0 + Duration::from_secs(2) + HOLD + Duration::from_secs(1);
        assert!(!auto.active(alice, "bank.test", later), "time-limited");
        assert!(
            !auto.refused(alice, "bank.test", later),
            "counting starts over"
        );
    }

    #[test]
    fn refusals_spread_out_never_add_up() {
        let auto = AutoPassthrough::default();
        let client = [10, 0, 0, 1].into();
        let t0 = Instant::now();
        for i in 0..10u64 {
            auto.refused(
                client,
                "a.test",
                t0 + (WINDOW + Duration::from_secs(1)) * i as u32,
            );
        }
        assert!(auto.list(t0 + WINDOW * 11).is_empty());
    }

    #[test]
    fn the_table_stays_bounded() {
        let auto = AutoPassthrough::default();
        let t0 = Instant::now();
        for i in 0..(CAPACITY as u32 + 500) {
            let client = IpAddr::from(i.to_be_bytes());
            auto.refused(client, "a.test", t0 + Duration::from_millis(u64::from(i)));
        }
        let len = auto.pairs.lock().map(|p| p.len()).unwrap_or(0);
        assert!(len <= CAPACITY, "{len}");
    }
}
