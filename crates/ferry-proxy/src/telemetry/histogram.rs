//! A Prometheus histogram kept in atomics. prometheus-client's own
//! `Histogram` takes a write lock for every observation; the request path
//! records one per request from every worker thread, and the metrics must
//! stay off its locks, so this one is a count per bucket, a count and a sum,
//! each an atomic add. It encodes through prometheus-client like any metric.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Upper bounds, in seconds, for request and fetch durations: from half a
/// millisecond (a memory hit) to a minute (a large download).
pub const DURATION_BOUNDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

#[derive(Debug, Clone)]
pub struct AtomicHistogram(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    bounds: &'static [f64],
    /// One per bound, then one for everything above the last (`+Inf`).
    counts: Vec<AtomicU64>,
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl AtomicHistogram {
    pub fn new(bounds: &'static [f64]) -> AtomicHistogram {
        AtomicHistogram(Arc::new(Inner {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
        }))
    }

    pub fn durations() -> AtomicHistogram {
        AtomicHistogram::new(DURATION_BOUNDS)
    }

    pub fn observe(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.observe_us(us);
    }

    pub fn observe_us(&self, us: u64) {
        let secs = us as f64 / 1e6;
        let at = self.0.bounds.partition_point(|b| *b < secs);
        if let Some(c) = self.0.counts.get(at) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.0.count.fetch_add(1, Ordering::Relaxed);
        self.0.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// (sum in seconds, count, per-bucket counts with their bounds).
    fn read(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let buckets = self
            .0
            .bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::MAX))
            .zip(&self.0.counts)
            .map(|(b, c)| (b, c.load(Ordering::Relaxed)))
            .collect();
        (
            self.0.sum_us.load(Ordering::Relaxed) as f64 / 1e6,
            self.0.count.load(Ordering::Relaxed),
            buckets,
        )
    }
}

impl TypedMetric for AtomicHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let (sum, count, buckets) = self.read();
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    #[test]
    fn observations_land_in_their_bucket_and_encode_cumulatively() {
        let h = AtomicHistogram::durations();
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(2));
        h.observe(Duration::from_secs(100));
        let mut registry = Registry::default();
        registry.register("t_seconds", "test", h.clone());
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        assert!(out.contains("t_seconds_bucket{le=\"0.0005\"} 2"), "{out}");
        assert!(out.contains("t_seconds_bucket{le=\"0.0025\"} 3"), "{out}");
        assert!(out.contains("t_seconds_bucket{le=\"60.0\"} 3"), "{out}");
        assert!(out.contains("t_seconds_bucket{le=\"+Inf\"} 4"), "{out}");
        assert!(out.contains("t_seconds_count 4"), "{out}");
        assert!(out.contains("t_seconds_sum 100.0028"), "{out}");
    }
}
