//! Recent traffic as the dashboard shows it: request counts by outcome and
//! bytes in 10-second buckets over the last 15 minutes, latency
//! percentiles, fetch-slot use, the busiest and the most blocked hosts, and
//! the last 100 requests.
//!
//! Fed by the access log's writer thread, a batch at a time, from the same
//! records the log lines are made of: the request path never touches this
//! module's lock. (The Prometheus counters are updated on the request path
//! with atomics; these figures are their recent, per-host detail.) The
//! proxy's own pages are left out, so a dashboard polling itself does not
//! fill its own tables. A record the log's full queue dropped is missing
//! here too; `/metrics` still counts it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use super::report::{HostCount, RecentRequest, Report, Series, Summaries, Summary, TopHosts};
use crate::outcome::{AccessRecord, ByteSource, RequestOutcome};
use crate::upstream::AdmissionStats;

/// Width of one chart bucket, in seconds.
pub const BUCKET_SECS: u64 = 10;
/// Buckets kept: 15 minutes.
pub const BUCKETS: usize = 90;
/// Buckets in the "last 5 minutes" figures.
const SUMMARY_BUCKETS: usize = 30;
const RECENT: usize = 100;
/// Hosts tracked per ranking (the tables show the first few).
const TRACKED_HOSTS: usize = 256;
const SHOWN_HOSTS: usize = 10;
/// Longest URL kept for the recent-requests table.
const URL_CHARS: usize = 300;

/// The chart's series, in order.
pub const SERIES: [&str; 8] = [
    "fresh_hit",
    "revalidated",
    "stale",
    "miss",
    "uncacheable",
    "blocked",
    "error",
    "tunnel",
];

fn outcome_of(r: &AccessRecord) -> RequestOutcome {
    RequestOutcome::of(r.kind, r.cache, r.error)
}

fn series_of(outcome: RequestOutcome) -> Option<usize> {
    Some(match outcome {
        RequestOutcome::FreshHit | RequestOutcome::Collapsed => 0,
        RequestOutcome::Revalidated => 1,
        RequestOutcome::Stale => 2,
        RequestOutcome::Miss => 3,
        RequestOutcome::Uncacheable | RequestOutcome::Bypass => 4,
        RequestOutcome::Blocked => 5,
        RequestOutcome::Error => 6,
        RequestOutcome::Tunnel => 7,
        RequestOutcome::OwnPage => return None,
    })
}

pub struct Activity {
    state: Mutex<State>,
    admission: Arc<AdmissionStats>,
}

#[derive(Default)]
struct State {
    /// Oldest first; each knows its own time, so quiet periods leave gaps.
    buckets: VecDeque<Bucket>,
    since_start: Tally,
    recent: VecDeque<RecentRequest>,
    by_requests: TopK,
    by_bytes: TopK,
    blocked: TopK,
}

#[derive(Debug, Clone, Default)]
struct Bucket {
    /// Unix seconds / `BUCKET_SECS`.
    index: u64,
    tally: Tally,
    outcomes: [u64; SERIES.len()],
    slots_in_use: u64,
    queue_length: u64,
}

/// Counts that add up over buckets.
#[derive(Debug, Clone, Default)]
struct Tally {
    requests: u64,
    /// Requests answered with a body from the cache or an origin (hits,
    /// misses, uncacheable and bypassing ones; not tunnels, refusals or
    /// errors): the hit ratio's denominator, as in docs/metrics.md.
    cacheable: u64,
    hits: u64,
    bytes_from_cache: u64,
    bytes_from_origin: u64,
    blocked: u64,
    errors: u64,
    latency: Latency,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.requests += other.requests;
        self.cacheable += other.cacheable;
        self.hits += other.hits;
        self.bytes_from_cache += other.bytes_from_cache;
        self.bytes_from_origin += other.bytes_from_origin;
        self.blocked += other.blocked;
        self.errors += other.errors;
        self.latency.add(&other.latency);
    }

    fn record(&mut self, outcome: RequestOutcome, r: &AccessRecord) {
        self.requests += 1;
        if outcome.byte_source().is_some() {
            self.cacheable += 1;
        }
        match outcome.byte_source() {
            Some(ByteSource::Cache) => {
                self.hits += 1;
                self.bytes_from_cache += r.bytes;
            }
            Some(ByteSource::Origin) => self.bytes_from_origin += r.bytes,
            None => {}
        }
        match outcome {
            RequestOutcome::Blocked => self.blocked += 1,
            RequestOutcome::Error => self.errors += 1,
            _ => {}
        }
        self.latency.record(r.duration_us);
    }
}

/// Latency counts in buckets growing by a third each, from 50 µs to over a
/// minute: percentiles within a bucket's width, in a fixed 48 counts.
#[derive(Debug, Clone)]
struct Latency([u64; 48]);

impl Default for Latency {
    fn default() -> Self {
        Latency([0; 48])
    }
}

impl Latency {
    fn bound_us(i: usize) -> f64 {
        50.0 * 1.35f64.powi(i as i32)
    }

    fn record(&mut self, us: u64) {
        let last = self.0.len() - 1;
        let i = if us <= 50 {
            0
        } else {
            // The first bucket whose bound is at least `us`, found with one
            // logarithm rather than a search (this runs for every request).
            let i = ((us as f64 / 50.0).ln() / 1.35f64.ln()).ceil() as usize;
            // Rounding at a bound may land one bucket off; settle it.
            match i.min(last) {
                i if i > 0 && us as f64 <= Self::bound_us(i - 1) => i - 1,
                i if i < last && us as f64 > Self::bound_us(i) => i + 1,
                i => i,
            }
        };
        self.0[i] += 1;
    }

    fn add(&mut self, other: &Latency) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += b;
        }
    }

    /// The `q` quantile in milliseconds (the upper bound of its bucket), or
    /// `None` with no requests.
    fn quantile_ms(&self, q: f64) -> Option<f64> {
        let total: u64 = self.0.iter().sum();
        if total == 0 {
            return None;
        }
        let want = (q * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.0.iter().enumerate() {
            seen += n;
            if seen >= want {
                return Some((Self::bound_us(i) / 1000.0 * 100.0).round() / 100.0);
            }
        }
        None
    }
}

/// The heaviest keys of a stream in bounded memory (the Space-Saving
/// algorithm): a new key, once the table is full, replaces the lightest one
/// and inherits its weight, so a count may be too high by at most the
/// lightest weight at that time but a heavy key is never lost. Written here
/// because it is a few lines and no well-kept crate offers it.
#[derive(Debug, Default)]
struct TopK {
    /// Key → (ranked weight, other figure).
    counts: HashMap<String, (u64, u64)>,
}

impl TopK {
    fn add(&mut self, key: &str, weight: u64, other: u64) {
        if let Some(c) = self.counts.get_mut(key) {
            c.0 += weight;
            c.1 += other;
            return;
        }
        let mut start = 0;
        if self.counts.len() >= TRACKED_HOSTS {
            let lightest = self
                .counts
                .iter()
                .min_by_key(|(_, c)| c.0)
                .map(|(k, c)| (k.clone(), c.0));
            if let Some((k, w)) = lightest {
                self.counts.remove(&k);
                start = w;
            }
        }
        self.counts.insert(key.to_string(), (start + weight, other));
    }

    fn top(&self) -> Vec<(&str, u64, u64)> {
        let mut all: Vec<_> = self
            .counts
            .iter()
            .map(|(k, c)| (k.as_str(), c.0, c.1))
            .collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        all.truncate(SHOWN_HOSTS);
        all
    }
}

/// The figures of a period, from its tally.
fn summary_of(t: &Tally) -> Summary {
    let ratio = |a: u64, b: u64| {
        if b == 0 {
            0.0
        } else {
            ((a as f64 / b as f64) * 1000.0).round() / 1000.0
        }
    };
    Summary {
        requests: t.requests,
        hits: t.hits,
        request_hit_ratio: ratio(t.hits, t.cacheable),
        bytes_from_cache: t.bytes_from_cache,
        bytes_from_origin: t.bytes_from_origin,
        byte_hit_ratio: ratio(t.bytes_from_cache, t.bytes_from_cache + t.bytes_from_origin),
        bytes_saved: t.bytes_from_cache,
        blocked: t.blocked,
        errors: t.errors,
        latency_p50_ms: t.latency.quantile_ms(0.50),
        latency_p95_ms: t.latency.quantile_ms(0.95),
    }
}

impl Activity {
    pub fn new(admission: Arc<AdmissionStats>) -> Arc<Activity> {
        Arc::new(Activity {
            state: Mutex::new(State::default()),
            admission,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a batch of finished requests (called by the log's writer).
    pub fn record(&self, batch: &[AccessRecord]) {
        // Only the batch's last `RECENT` shown records can stay in the
        // recent table: the ones before them are counted but not copied
        // (their client, method and URL as text), which under load is most
        // of a batch.
        let mut shown = 0;
        let listed_from = batch
            .iter()
            .rposition(|r| {
                shown += usize::from(series_of(outcome_of(r)).is_some());
                shown == RECENT
            })
            .unwrap_or(0);
        let mut state = self.lock();
        for (i, r) in batch.iter().enumerate() {
            state.record(r, i >= listed_from);
        }
    }

    /// Notes the fetch slots in use and the queue now (called about once a
    /// second by the log's writer): each bucket keeps the highest seen.
    pub fn sample_fetch(&self, now: SystemTime) {
        let in_use = self.admission.in_flight.load(Ordering::Relaxed) as u64;
        let queued = self.admission.queued.load(Ordering::Relaxed) as u64;
        let mut state = self.lock();
        let bucket = state.bucket(bucket_index(now));
        bucket.slots_in_use = bucket.slots_in_use.max(in_use);
        bucket.queue_length = bucket.queue_length.max(queued);
    }

    pub fn report(&self, now: SystemTime) -> Report {
        let state = self.lock();
        let window = state.window(now);
        let mut last_5m = Tally::default();
        for b in window.iter().skip(BUCKETS - SUMMARY_BUCKETS).flatten() {
            last_5m.add(&b.tally);
        }
        let hosts = |t: &TopK, swap: bool| -> Vec<HostCount> {
            t.top()
                .into_iter()
                .map(|(host, a, b)| {
                    let (requests, bytes) = if swap { (b, a) } else { (a, b) };
                    HostCount {
                        host: host.to_string(),
                        requests,
                        bytes,
                    }
                })
                .collect()
        };
        Report {
            summary: Summaries {
                last_5m: summary_of(&last_5m),
                since_start: summary_of(&state.since_start),
            },
            series: series(&window, now),
            top_hosts: TopHosts {
                by_requests: hosts(&state.by_requests, false),
                by_bytes: hosts(&state.by_bytes, true),
            },
            top_blocked: hosts(&state.blocked, false),
            recent: state.recent.iter().rev().cloned().collect(),
        }
    }

    /// The charts' data alone (what `/charts/*.svg` draws).
    pub fn series(&self, now: SystemTime) -> Series {
        let state = self.lock();
        series(&state.window(now), now)
    }
}

/// The window's buckets, one slot per `BUCKET_SECS`, oldest first: `None`
/// where nothing happened.
type Window<'a> = Vec<Option<&'a Bucket>>;

fn series(window: &Window<'_>, now: SystemTime) -> Series {
    let per_sec = |v: u64| v as f64 / BUCKET_SECS as f64;
    let values = |f: &dyn Fn(&Bucket) -> f64| -> Vec<f64> {
        window.iter().map(|b| b.map_or(0.0, f)).collect()
    };
    let counts = |f: &dyn Fn(&Bucket) -> u64| -> Vec<u64> {
        window.iter().map(|b| b.map_or(0, f)).collect()
    };
    Series {
        interval_seconds: BUCKET_SECS,
        start: window_start(now) * BUCKET_SECS,
        requests_per_second: SERIES
            .iter()
            .enumerate()
            .map(|(i, name)| (*name, values(&|b: &Bucket| per_sec(b.outcomes[i]))))
            .collect(),
        bytes_from_cache: values(&|b: &Bucket| per_sec(b.tally.bytes_from_cache)),
        bytes_from_origin: values(&|b: &Bucket| per_sec(b.tally.bytes_from_origin)),
        fetch_slots_in_use: counts(&|b: &Bucket| b.slots_in_use),
        fetch_queue_length: counts(&|b: &Bucket| b.queue_length),
    }
}

/// The index of the window's oldest bucket.
fn window_start(now: SystemTime) -> u64 {
    bucket_index(now).saturating_sub(BUCKETS as u64 - 1)
}

impl State {
    fn window(&self, now: SystemTime) -> Window<'_> {
        let oldest = window_start(now);
        let mut window: Window<'_> = vec![None; BUCKETS];
        for b in self.buckets.iter().filter(|b| b.index >= oldest) {
            if let Some(slot) = window.get_mut((b.index - oldest) as usize) {
                *slot = Some(b);
            }
        }
        window
    }

    fn record(&mut self, r: &AccessRecord, listed: bool) {
        let outcome = outcome_of(r);
        let Some(series) = series_of(outcome) else {
            return;
        };
        let bucket = self.bucket(bucket_index(r.time));
        bucket.outcomes[series] += 1;
        bucket.tally.record(outcome, r);
        self.since_start.record(outcome, r);
        let host = host_in_url(&r.url);
        if outcome == RequestOutcome::Blocked {
            self.blocked.add(host, 1, r.bytes);
        } else {
            self.by_requests.add(host, 1, r.bytes);
            self.by_bytes.add(host, r.bytes, 1);
        }
        if !listed {
            return;
        }
        if self.recent.len() >= RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(RecentRequest {
            time_ms: r
                .time
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            client: r.client.ip().to_string(),
            method: r.method.to_string(),
            url: match r.url.char_indices().nth(URL_CHARS) {
                Some((cut, _)) => r.url[..cut].to_string(),
                None => r.url.clone(),
            },
            status: r.status,
            outcome: outcome.as_str(),
            bytes: r.bytes,
            duration_ms: (r.duration_us as f64 / 10.0).round() / 100.0,
        });
    }

    /// The bucket for `index`, made if needed; buckets older than the
    /// window go, and a record from before the window (a request that
    /// lasted longer than it) counts in the oldest bucket.
    fn bucket(&mut self, index: u64) -> &mut Bucket {
        let newest = self.buckets.back().map_or(index, |b| b.index.max(index));
        let oldest = newest.saturating_sub(BUCKETS as u64 - 1);
        let index = index.max(oldest);
        while self.buckets.front().is_some_and(|b| b.index < oldest) {
            self.buckets.pop_front();
        }
        let at = match self.buckets.binary_search_by_key(&index, |b| b.index) {
            Ok(at) => at,
            Err(at) => {
                self.buckets.insert(
                    at,
                    Bucket {
                        index,
                        ..Bucket::default()
                    },
                );
                at
            }
        };
        &mut self.buckets[at]
    }
}

fn bucket_index(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) / BUCKET_SECS
}

/// The host of a logged target: `http://host:port/path` or `host:port`
/// (CONNECT).
fn host_in_url(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::outcome::{CacheOutcome, Failure, Fwd, RequestKind, RuleKind};

    fn record(url: &str, cache: CacheOutcome, bytes: u64, us: u64, at: SystemTime) -> AccessRecord {
        AccessRecord {
            time: at,
            client: "192.0.2.7:5000".parse().unwrap(),
            user: None,
            method: http::Method::GET,
            url: url.into(),
            version: "HTTP/1.1",
            status: 200,
            bytes,
            duration_us: us,
            cache,
            kind: RequestKind::Origin,
            error: None,
            user_agent: None,
            referer: None,
            rule: None,
            group: None,
        }
    }

    const MISS: CacheOutcome = CacheOutcome::Stored {
        fwd: Fwd::UriMiss,
        fwd_status: 200,
    };
    const HIT: CacheOutcome = CacheOutcome::Hit { ttl: 10 };

    #[test]
    fn hosts_are_found_in_every_target_form() {
        assert_eq!(host_in_url("http://a.test/x?y"), "a.test");
        assert_eq!(host_in_url("http://a.test:8080/x"), "a.test");
        assert_eq!(host_in_url("a.test:443"), "a.test");
        assert_eq!(host_in_url("http://[::1]:80/"), "::1");
        assert_eq!(host_in_url("/"), "");
    }

    #[test]
    fn ratios_bytes_latency_and_tables_follow_the_records() {
        let activity = Activity::new(Arc::default());
        let now = SystemTime::now();
        let mut batch = vec![record("http://a.test/1", MISS, 1000, 20_000, now)];
        for _ in 0..3 {
            batch.push(record("http://a.test/1", HIT, 1000, 300, now));
        }
        batch.push(record("http://b.test/big", MISS, 1_000_000, 90_000, now));
        let mut blocked = record("http://evil.test/", CacheOutcome::Refused, 0, 100, now);
        blocked.error = Some(Failure::Policy(RuleKind::Domain));
        batch.push(blocked);
        let mut own = record("/api/stats", CacheOutcome::NotConsulted, 10, 100, now);
        own.kind = RequestKind::Own;
        batch.push(own);
        activity.record(&batch);

        let r = activity.report(now);
        for s in [&r.summary.last_5m, &r.summary.since_start] {
            assert_eq!(s.requests, 6, "own pages are left out");
            assert_eq!(s.hits, 3);
            assert_eq!(s.request_hit_ratio, 0.6, "3 hits of 5 answered with a body");
            assert_eq!(s.bytes_from_cache, 3000);
            assert_eq!(s.bytes_from_origin, 1_001_000);
            assert_eq!(s.blocked, 1);
            assert!(s.latency_p50_ms.unwrap() < 1.0, "{s:?}");
            assert!(s.latency_p95_ms.unwrap() >= 20.0, "{s:?}");
        }
        assert_eq!(r.top_hosts.by_requests[0].host, "a.test");
        assert_eq!(r.top_hosts.by_requests[0].requests, 4);
        assert_eq!(r.top_hosts.by_bytes[0].host, "b.test");
        assert_eq!(r.top_hosts.by_bytes[0].bytes, 1_000_000);
        assert_eq!(r.top_blocked[0].host, "evil.test");
        assert_eq!(r.recent.len(), 6);
        assert_eq!(r.recent[0].outcome, "blocked", "newest first");
        let hits = &r.series.requests_per_second[0];
        assert_eq!(hits.0, "fresh_hit");
        assert_eq!(hits.1.len(), BUCKETS);
        assert_eq!(*hits.1.last().unwrap(), 0.3, "3 hits in a 10 s bucket");
    }

    #[test]
    fn a_large_batch_lists_its_last_hundred_shown_requests_and_counts_all() {
        let activity = Activity::new(Arc::default());
        let now = SystemTime::now();
        activity.record(&[record("http://before.test/", HIT, 1, 1, now)]);
        let mut batch: Vec<_> = (0..250)
            .map(|i| record(&format!("http://a.test/{i}"), HIT, 1, 1, now))
            .collect();
        // Own pages at the end are neither counted nor listed, and do not
        // take places in the table.
        for _ in 0..5 {
            let mut own = record("/api/stats", CacheOutcome::NotConsulted, 1, 1, now);
            own.kind = RequestKind::Own;
            batch.push(own);
        }
        let long = format!("http://a.test/{}", "é".repeat(400));
        batch.insert(240, record(&long, HIT, 1, 1, now));
        activity.record(&batch);

        let r = activity.report(now);
        assert_eq!(r.summary.since_start.requests, 252);
        assert_eq!(r.recent.len(), RECENT);
        let urls: Vec<&str> = r.recent.iter().map(|q| q.url.as_str()).collect();
        assert_eq!(urls[0], "http://a.test/249", "newest first");
        assert_eq!(urls[RECENT - 1], "http://a.test/151");
        let cut = urls.iter().find(|u| u.contains('é')).unwrap();
        assert_eq!(cut.chars().count(), URL_CHARS, "cut on a character");
    }

    #[test]
    fn old_buckets_leave_the_window_and_the_summary() {
        let activity = Activity::new(Arc::default());
        let now = SystemTime::now();
        let long_ago = now - Duration::from_secs(20 * 60);
        let six_min_ago = now - Duration::from_secs(6 * 60);
        activity.record(&[record("http://a.test/", HIT, 1, 1, long_ago)]);
        activity.record(&[record("http://a.test/", HIT, 1, 1, six_min_ago)]);
        activity.record(&[record("http://a.test/", MISS, 1, 1, now)]);
        let r = activity.report(now);
        assert_eq!(r.summary.since_start.requests, 3);
        assert_eq!(r.summary.last_5m.requests, 1);
        let in_window: f64 = r.series.requests_per_second[0].1.iter().sum();
        assert_eq!(in_window, 0.1, "only the hit of six minutes ago is charted");
    }

    #[test]
    fn latencies_land_in_the_first_bucket_that_holds_them() {
        for us in [0, 1, 50, 51, 67, 68, 1000, 20_000, 60_000_000, u64::MAX] {
            let mut l = Latency::default();
            l.record(us);
            let i = l.0.iter().position(|n| *n == 1).unwrap();
            let expected = (0..48)
                .find(|i| us as f64 <= Latency::bound_us(*i))
                .unwrap_or(47);
            assert_eq!(i, expected, "{us} µs");
        }
    }

    #[test]
    fn top_k_keeps_heavy_hosts_in_bounded_memory() {
        let mut t = TopK::default();
        for i in 0..10_000 {
            t.add(&format!("h{i}.test"), 1, 0);
            t.add("heavy.test", 3, 0);
        }
        assert!(t.counts.len() <= TRACKED_HOSTS);
        assert_eq!(t.top()[0].0, "heavy.test");
        assert_eq!(t.top()[0].1, 30_000);
    }

    #[test]
    fn slot_samples_keep_the_highest_in_a_bucket() {
        let stats = Arc::new(AdmissionStats::default());
        let activity = Activity::new(stats.clone());
        let now = SystemTime::now();
        stats.in_flight.store(4, Ordering::Relaxed);
        stats.queued.store(2, Ordering::Relaxed);
        activity.sample_fetch(now);
        stats.in_flight.store(1, Ordering::Relaxed);
        stats.queued.store(0, Ordering::Relaxed);
        activity.sample_fetch(now);
        let r = activity.report(now);
        assert_eq!(*r.series.fetch_slots_in_use.last().unwrap(), 4);
        assert_eq!(*r.series.fetch_queue_length.last().unwrap(), 2);
    }
}
