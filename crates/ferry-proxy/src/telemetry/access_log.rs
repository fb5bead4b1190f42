//! The access log's writer: records queue (bounded, never blocking the
//! request path) for a dedicated thread that writes one line each, in common
//! or JSON format, and hands every record to the dashboard's aggregation.

use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Instant, SystemTime};

use super::activity::Activity;
use super::log_line::{TimeText, write_line};
use super::metrics::Metrics;
use crate::config::LogFormat;
use crate::outcome::AccessRecord;

/// Most records waiting for the writer. Beyond it (a disk that stalls, a
/// pipe nobody reads) lines are dropped and counted: the request path never
/// waits for the log, and the queue never grows without bound.
const QUEUE_LIMIT: usize = 64 * 1024;

/// Sends records to the writer thread. Cheap to clone.
///
/// The queue is an unbounded channel with a count beside it, not a bounded
/// channel: std's bounded one allocates (and touches) all its slots up
/// front, megabytes of memory for a queue that is nearly always empty.
#[derive(Clone)]
pub struct AccessLog {
    tx: mpsc::Sender<AccessRecord>,
    queued: Arc<AtomicUsize>,
    dropped: Arc<AtomicU64>,
}

impl AccessLog {
    /// Opens the destination (`-` = stdout, else a file appended to) and starts
    /// the writer thread.
    ///
    /// The writer also hands every record, a batch at a time, to `activity`
    /// (the dashboard's recent figures) and samples the fetch slots into it
    /// about once a second.
    pub fn open(
        dest: &str,
        format: LogFormat,
        activity: Arc<Activity>,
    ) -> std::io::Result<AccessLog> {
        let out: Box<dyn Write + Send> = if dest == "-" {
            Box::new(std::io::stdout())
        } else {
            Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dest)?,
            )
        };
        let (tx, rx) = mpsc::channel::<AccessRecord>();
        let queued = Arc::new(AtomicUsize::new(0));
        let writer_queued = queued.clone();
        std::thread::Builder::new()
            .name("ferry-access-log".into())
            .spawn(move || write_loop(rx, out, format, &writer_queued, &activity))?;
        Ok(AccessLog {
            tx,
            queued,
            dropped: Arc::default(),
        })
    }

    /// A log that keeps nothing (for tests).
    #[cfg(test)]
    pub fn discard() -> AccessLog {
        let (tx, _rx) = mpsc::channel();
        AccessLog {
            tx,
            queued: Arc::default(),
            dropped: Arc::default(),
        }
    }

    pub fn record(&self, record: AccessRecord) {
        if self.queued.fetch_add(1, Ordering::Relaxed) >= QUEUE_LIMIT {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // The writer only goes away at exit; a lost line then is acceptable.
        let _ = self.tx.send(record);
    }

    /// Lines dropped because the queue was full.
    pub fn dropped(&self) -> Arc<AtomicU64> {
        self.dropped.clone()
    }
}

/// A request is over (its body sent, or its tunnel closed): `record` gets
/// its duration, then goes to the metrics and the log.
pub fn log_finished(
    mut record: AccessRecord,
    started: Instant,
    log: &AccessLog,
    metrics: &Metrics,
) {
    record.duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    metrics.record_response(&record);
    log.record(record);
}

/// How often the writer wakes to write what has queued. Waking per record
/// would cost a context switch per request under load.
const DRAIN_EVERY: std::time::Duration = std::time::Duration::from_millis(20);

/// How often the fetch slots are sampled for the dashboard's chart.
const SAMPLE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

fn write_loop(
    rx: mpsc::Receiver<AccessRecord>,
    out: Box<dyn Write + Send>,
    format: LogFormat,
    queued: &AtomicUsize,
    activity: &Activity,
) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    let mut line = String::with_capacity(256);
    let mut clock = TimeText::default();
    let mut batch: Vec<AccessRecord> = Vec::with_capacity(256);
    let mut sampled = Instant::now();
    loop {
        // Block only when idle (waking each second to sample the fetch
        // slots); under load, sleep and take what queued meanwhile.
        let first = match rx.recv_timeout(SAMPLE_EVERY) {
            Ok(r) => r,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                activity.sample_fetch(SystemTime::now());
                sampled = Instant::now();
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let mut next = Some(first);
        loop {
            // Counted down once per batch: the counter is shared with every
            // worker, and touching it per line would bounce it between cores.
            let mut taken = 0;
            while let Some(r) = next {
                line.clear();
                taken += 1;
                write_line(&r, &mut line, format, &mut clock);
                line.push('\n');
                if out.write_all(line.as_bytes()).is_err() {
                    return;
                }
                batch.push(r);
                next = rx.try_recv().ok();
            }
            queued.fetch_sub(taken, Ordering::Relaxed);
            activity.record(&batch);
            batch.clear();
            if sampled.elapsed() >= SAMPLE_EVERY {
                activity.sample_fetch(SystemTime::now());
                sampled = Instant::now();
            }
            if out.flush().is_err() {
                return;
            }
            std::thread::sleep(DRAIN_EVERY);
            match rx.try_recv() {
                Ok(r) => next = Some(r),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{CacheOutcome, Fwd, RequestKind};

    fn record() -> AccessRecord {
        AccessRecord {
            time: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000),
            client: "127.0.0.1:5555".parse().unwrap(),
            user: None,
            method: http::Method::GET,
            url: "http://example.test/a".into(),
            version: "HTTP/1.1",
            status: 200,
            bytes: 1234,
            duration_us: 7_400,
            kind: RequestKind::Origin,
            cache: CacheOutcome::Stored {
                fwd: Fwd::UriMiss,
                fwd_status: 200,
            },
            error: None,
            user_agent: None,
            referer: None,
            rule: None,
            group: None,
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_lines_instead_of_growing() {
        let (tx, rx) = mpsc::channel();
        let log = AccessLog {
            tx,
            queued: Arc::new(AtomicUsize::new(QUEUE_LIMIT - 2)),
            dropped: Arc::default(),
        };
        for _ in 0..5 {
            log.record(record());
        }
        assert_eq!(log.dropped().load(Ordering::Relaxed), 3);
        assert_eq!(rx.try_iter().count(), 2);
    }
}
