//! The job table of `ferry client`: the downloads a session started, each
//! queued behind the session's `--jobs` slots and run in the background, its
//! progress for the `jobs` command and its result line when it ends, and at
//! the end of the session waiting for them or cancelling them. Apart from the
//! prompt, which reads commands and decides what each download is fetched
//! with, so the table knows nothing of command lines.

use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use http::StatusCode;
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::job::{self, Destination, Observer, Settings};
use crate::options::GetOptions;
use crate::report;

/// Where result lines go.
pub(super) trait Output: Send + Sync {
    fn line(&self, text: String);
}

const QUEUED: u8 = 0;
const RUNNING: u8 = 1;
const DONE: u8 = 2;

/// What the `jobs` command shows about one download.
struct JobState {
    id: usize,
    input: String,
    phase: AtomicU8,
    bytes: AtomicU64,
    /// `u64::MAX` while unknown.
    total: AtomicU64,
}

impl Observer for JobState {
    fn response(&self, _status: StatusCode, length: Option<u64>) {
        self.total
            .store(length.unwrap_or(u64::MAX), Ordering::Relaxed);
    }
    fn bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }
}

/// The downloads of one session.
pub(super) struct Jobs {
    runtime: tokio::runtime::Handle,
    slots: Arc<Semaphore>,
    out: Arc<dyn Output>,
    json: bool,
    table: Mutex<Vec<Arc<JobState>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    failures: Arc<AtomicUsize>,
}

impl Jobs {
    pub(super) fn new(runtime: &Runtime, args: &GetOptions, out: Arc<dyn Output>) -> Jobs {
        Jobs {
            runtime: runtime.handle().clone(),
            slots: Arc::new(Semaphore::new(usize::from(args.jobs.max(1)))),
            out,
            json: args.json,
            table: Mutex::new(Vec::new()),
            tasks: Mutex::new(Vec::new()),
            failures: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Starts a download in the background and says so.
    pub(super) fn start(&self, input: String, settings: Arc<Settings>) {
        let state = {
            let mut table = lock(&self.table);
            let state = Arc::new(JobState {
                id: table.len() + 1,
                input: input.clone(),
                phase: AtomicU8::new(QUEUED),
                bytes: AtomicU64::new(0),
                total: AtomicU64::new(u64::MAX),
            });
            table.push(state.clone());
            state
        };
        if !self.json {
            self.out.line(format!("[{}] get {input}", state.id));
        }
        let slots = self.slots.clone();
        let out = self.out.clone();
        let failures = self.failures.clone();
        let json = self.json;
        let task = self.runtime.spawn(async move {
            let _slot = slots.acquire_owned().await;
            state.phase.store(RUNNING, Ordering::Relaxed);
            let observer: Arc<dyn Observer> = state.clone();
            let outcome = job::run(input, Destination::Auto, settings, observer).await;
            state.phase.store(DONE, Ordering::Relaxed);
            if !outcome.ok() {
                failures.fetch_add(1, Ordering::Relaxed);
            }
            if json {
                out.line(report::json_line(&outcome));
            } else {
                out.line(format!("[{}] {}", state.id, report::text_line(&outcome)));
            }
        });
        lock(&self.tasks).push(task);
    }

    pub(super) fn unfinished(&self) -> usize {
        lock(&self.table)
            .iter()
            .filter(|j| j.phase.load(Ordering::Relaxed) != DONE)
            .count()
    }

    /// The `jobs` listing.
    pub(super) fn listing(&self) -> String {
        let table = lock(&self.table);
        let mut lines = Vec::new();
        let mut done = 0;
        for job in table.iter() {
            let phase = job.phase.load(Ordering::Relaxed);
            if phase == DONE {
                done += 1;
                continue;
            }
            let bytes = job.bytes.load(Ordering::Relaxed);
            let total = job.total.load(Ordering::Relaxed);
            let progress = match (phase, total) {
                (QUEUED, _) => "queued".to_string(),
                (_, u64::MAX) => format!("running  {}", indicatif::HumanBytes(bytes)),
                (_, total) => format!(
                    "running  {} / {}",
                    indicatif::HumanBytes(bytes),
                    indicatif::HumanBytes(total)
                ),
            };
            lines.push(format!("[{}] {progress}  {}", job.id, job.input));
        }
        if lines.is_empty() {
            lines.push("no downloads running".to_string());
        }
        if done > 0 {
            lines.push(format!("({done} finished)"));
        }
        lines.join("\n")
    }

    /// Waits for every download; returns false if Ctrl-C cancelled them.
    pub(super) fn wait_all(&self) -> bool {
        let tasks: Vec<JoinHandle<()>> = lock(&self.tasks).drain(..).collect();
        if tasks.is_empty() {
            return true;
        }
        let aborts: Vec<_> = tasks.iter().map(JoinHandle::abort_handle).collect();
        self.runtime.block_on(async move {
            let all = async {
                for task in tasks {
                    let _ = task.await;
                }
            };
            tokio::pin!(all);
            tokio::select! {
                _ = &mut all => true,
                _ = tokio::signal::ctrl_c() => {
                    for a in &aborts {
                        a.abort();
                    }
                    // Let the aborted jobs drop their temporary files.
                    all.await;
                    false
                }
            }
        })
    }

    pub(super) fn cancel_all(&self) {
        let tasks: Vec<JoinHandle<()>> = lock(&self.tasks).drain(..).collect();
        for task in &tasks {
            task.abort();
        }
        self.runtime.block_on(async move {
            for task in tasks {
                let _ = task.await;
            }
        });
    }

    pub(super) fn failures(&self) -> usize {
        self.failures.load(Ordering::Relaxed)
    }
}

/// A poisoned lock only means another thread panicked mid-update of a list;
/// the list itself is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Silent;
    impl Output for Silent {
        fn line(&self, _text: String) {}
    }

    fn job(id: usize, phase: u8, bytes: u64, total: u64) -> Arc<JobState> {
        Arc::new(JobState {
            id,
            input: format!("http://a.test/{id}"),
            phase: AtomicU8::new(phase),
            bytes: AtomicU64::new(bytes),
            total: AtomicU64::new(total),
        })
    }

    #[test]
    fn the_listing_shows_unfinished_downloads_and_counts_finished_ones() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let jobs = Jobs::new(&runtime, &GetOptions::default(), Arc::new(Silent));
        assert_eq!(jobs.listing(), "no downloads running");
        lock(&jobs.table).extend([
            job(1, DONE, 10, 10),
            job(2, RUNNING, 2048, u64::MAX),
            job(3, RUNNING, 1024, 4096),
            job(4, QUEUED, 0, u64::MAX),
        ]);
        assert_eq!(jobs.unfinished(), 3);
        assert_eq!(
            jobs.listing(),
            "[2] running  2.00 KiB  http://a.test/2\n\
             [3] running  1.00 KiB / 4.00 KiB  http://a.test/3\n\
             [4] queued  http://a.test/4\n\
             (1 finished)"
        );
    }
}
