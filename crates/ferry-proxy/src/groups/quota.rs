//! Daily byte quotas: how many bytes each client moved today (local day),
//! to and from it, and the file that keeps those counts across restarts.
//! Which clients have a quota, and how large, is the group's; this module
//! only counts and remembers.
//!
//! A request takes its client's counter once ([`QuotaBook::counter`]) and
//! adds to it without a lock as bytes move. At local midnight the book
//! starts a new day: counters handed out before keep counting into the old
//! day, so a transfer that straddles midnight is charged to the day it
//! started in.

use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use jiff::Zoned;
use jiff::civil::Date;

use crate::host::canonical_ip;

/// At most this many clients are remembered in one day; past it, new
/// clients share one counter (a flood of spoofed sources cannot grow the
/// book, or the file, without bound).
const MAX_CLIENTS: usize = 100_000;
/// The key the overflow shares.
const OVERFLOW: &str = "(others)";

/// One client's bytes for the day.
pub type Counter = Arc<AtomicU64>;

/// Every client's count for the current local day.
#[derive(Debug)]
pub struct QuotaBook {
    day: Mutex<Day>,
}

#[derive(Debug)]
struct Day {
    date: Date,
    clients: HashMap<String, Counter>,
    /// The same counters of clients known by address, found without
    /// writing the address out on every request.
    by_address: HashMap<IpAddr, Counter>,
}

impl Default for QuotaBook {
    fn default() -> QuotaBook {
        QuotaBook {
            day: Mutex::new(Day {
                date: today(),
                clients: HashMap::new(),
                by_address: HashMap::new(),
            }),
        }
    }
}

impl QuotaBook {
    /// Today's counts from `path`, if it holds today's; with what went
    /// wrong reading it (a missing file is not wrong). A corrupt file is
    /// reported and set aside (`.corrupt`), never a reason not to start.
    pub fn load(path: &Path) -> (QuotaBook, Vec<String>) {
        QuotaBook::read(path, true)
    }

    /// Today's counts from `path`, touching nothing (for `ferry policy test`).
    pub fn peek(path: &Path) -> QuotaBook {
        QuotaBook::read(path, false).0
    }

    fn read(path: &Path, set_aside_corrupt: bool) -> (QuotaBook, Vec<String>) {
        let book = QuotaBook::default();
        let mut warnings = Vec::new();
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (book, warnings),
            Err(e) => {
                warnings.push(format!("cannot read {}: {e}", path.display()));
                return (book, warnings);
            }
        };
        let text = String::from_utf8_lossy(&bytes);
        let mut lines = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'));
        let saved_day = lines
            .next()
            .and_then(|l| l.strip_prefix("day "))
            .map(str::trim);
        let Some(saved_day) = saved_day else {
            if set_aside_corrupt {
                let aside = path.with_extension("corrupt");
                let moved = std::fs::rename(path, &aside);
                warnings.push(format!(
                    "{} is not a quota file (no `day` line); {}, counting from zero",
                    path.display(),
                    match moved {
                        Ok(()) => format!("moved to {}", aside.display()),
                        Err(e) => format!("could not move it aside: {e}"),
                    }
                ));
            }
            return (book, warnings);
        };
        let mut day = book.lock();
        if saved_day != day.date.to_string() {
            drop(day);
            return (book, warnings);
        }
        // One damaged line costs that client's count, not everyone's.
        let mut damaged = 0usize;
        for line in lines {
            let count = line
                .rsplit_once(' ')
                .and_then(|(client, used)| Some((client, used.trim().parse::<u64>().ok()?)));
            match count {
                Some((client, used)) if !client.is_empty() && day.clients.len() < MAX_CLIENTS => {
                    day.clients
                        .insert(client.to_string(), Arc::new(AtomicU64::new(used)));
                }
                Some(_) => {}
                None => damaged += 1,
            }
        }
        drop(day);
        if damaged > 0 {
            warnings.push(format!(
                "{}: {damaged} damaged lines skipped; the other clients' counts are kept",
                path.display()
            ));
        }
        (book, warnings)
    }

    /// Writes today's counts to `path` (whole or not at all): a `day` line,
    /// then one `CLIENT BYTES` line per client.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let mut text = String::from("# ferry: bytes each client moved today\n");
        {
            let day = self.lock();
            text.push_str(&format!("day {}\n", day.date));
            for (client, used) in &day.clients {
                text.push_str(&format!("{client} {}\n", used.load(Ordering::Relaxed)));
            }
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("tmp");
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    }

    /// The counter of a client (by `client_key`) for today.
    pub fn counter_of(&self, client: IpAddr, user: Option<&str>) -> Counter {
        if user.is_some() {
            return self.counter(&client_key(client, user));
        }
        let address = canonical_ip(client);
        let mut day = self.lock();
        day.roll_over();
        if let Some(counter) = day.by_address.get(&address) {
            return counter.clone();
        }
        let counter = day.counter(&address.to_string());
        if day.by_address.len() < MAX_CLIENTS {
            day.by_address.insert(address, counter.clone());
        }
        counter
    }

    /// `client`'s counter for today, made if it has none.
    pub fn counter(&self, client: &str) -> Counter {
        let mut day = self.lock();
        day.roll_over();
        day.counter(client)
    }

    /// Bytes `client` moved today.
    pub fn used(&self, client: &str) -> u64 {
        let mut day = self.lock();
        day.roll_over();
        day.clients
            .get(client)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Every client's bytes today (for the dashboard).
    pub fn snapshot(&self) -> Vec<(String, u64)> {
        let mut day = self.lock();
        day.roll_over();
        day.clients
            .iter()
            .map(|(k, v)| (k.clone(), v.load(Ordering::Relaxed)))
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, Day> {
        self.day.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Day {
    /// `client`'s counter, made if it has none (past `MAX_CLIENTS`, the
    /// shared one).
    fn counter(&mut self, client: &str) -> Counter {
        if let Some(counter) = self.clients.get(client) {
            return counter.clone();
        }
        let key = if self.clients.len() >= MAX_CLIENTS {
            OVERFLOW
        } else {
            client
        };
        self.clients.entry(key.to_string()).or_default().clone()
    }

    fn roll_over(&mut self) {
        let today = today();
        if today != self.date {
            self.date = today;
            self.clients = HashMap::new();
            self.by_address = HashMap::new();
        }
    }
}

/// Who a quota is counted for: the proxy user when signed in (wherever
/// they sit), else the client's address.
pub fn client_key(client: IpAddr, user: Option<&str>) -> String {
    match user {
        Some(user) => format!("user:{user}"),
        None => canonical_ip(client).to_string(),
    }
}

fn today() -> Date {
    super::clock::now().date
}

/// How long until the quotas reset (the next local midnight), and that
/// moment as the refusal page shows it.
pub fn resets() -> (Duration, String) {
    let now = Zoned::now();
    let midnight = now
        .date()
        .tomorrow()
        .ok()
        .and_then(|d| d.to_zoned(now.time_zone().clone()).ok());
    match midnight {
        Some(at) => {
            let secs = (at.timestamp().as_second() - now.timestamp().as_second()).max(1);
            (
                Duration::from_secs(secs.unsigned_abs()),
                at.strftime("%a %Y-%m-%d %H:%M %Z").to_string(),
            )
        }
        None => (Duration::from_secs(3600), "tomorrow".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_survive_a_save_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("quota.txt");
        let book = QuotaBook::default();
        book.counter("10.1.2.3").fetch_add(1500, Ordering::Relaxed);
        book.counter("10.1.2.3").fetch_add(500, Ordering::Relaxed);
        book.counter("alice").fetch_add(7, Ordering::Relaxed);
        book.save(&path).unwrap();
        let (again, warnings) = QuotaBook::load(&path);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(again.used("10.1.2.3"), 2000);
        assert_eq!(again.used("alice"), 7);
        assert_eq!(again.used("10.9.9.9"), 0);
    }

    #[test]
    fn another_days_counts_and_corrupt_files_start_from_zero() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("quota.txt");
        std::fs::write(&path, "day 2001-01-01\n10.1.2.3 99\n").unwrap();
        let (book, warnings) = QuotaBook::load(&path);
        assert!(warnings.is_empty());
        assert_eq!(book.used("10.1.2.3"), 0);

        std::fs::write(&path, b"\0\xff not json").unwrap();
        let (book, warnings) = QuotaBook::load(&path);
        assert_eq!(book.used("10.1.2.3"), 0);
        assert!(warnings[0].contains("not a quota file"), "{warnings:?}");
        assert!(path.with_extension("corrupt").exists());
        assert!(!path.exists());

        let (_, warnings) = QuotaBook::load(&dir.path().join("absent.json"));
        assert!(warnings.is_empty());
    }

    #[test]
    fn a_damaged_line_loses_only_its_own_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("quota.txt");
        let today = today();
        std::fs::write(
            &path,
            format!("day {today}\n10.1.2.3 500\n10.1.2.4 \x00garbage\nuser:bob smith 70\n"),
        )
        .unwrap();
        let (book, warnings) = QuotaBook::load(&path);
        assert_eq!(book.used("10.1.2.3"), 500);
        assert_eq!(book.used("user:bob smith"), 70);
        assert_eq!(book.used("10.1.2.4"), 0);
        assert!(warnings[0].contains("1 damaged lines"), "{warnings:?}");
        assert!(path.exists());
    }

    #[test]
    fn the_book_stops_growing_at_its_limit() {
        let book = QuotaBook::default();
        for i in 0..MAX_CLIENTS + 10 {
            book.counter(&format!("c{i}"))
                .fetch_add(1, Ordering::Relaxed);
        }
        assert_eq!(book.lock().clients.len(), MAX_CLIENTS + 1);
        assert_eq!(book.used(OVERFLOW), 10);
    }

    #[test]
    fn the_reset_is_within_a_day() {
        let (wait, at) = resets();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(25 * 3600));
        assert!(!at.is_empty());
    }
}
