//! `ferry cache ls / stats / purge URL / clear`: inspect and manage a cache
//! directory directly. Safe while a proxy uses the same directory: files are
//! only read or removed (each removal is atomic), and removals are recorded in
//! the journal so a running proxy drops them from memory too.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use serde::Serialize;

use crate::config::CacheConfig;
use crate::journal::{self, Change};
use crate::key::{CacheKey, ObjectId};
use crate::meta::Kind;
use crate::policy;
use crate::store::disk;

/// One `ferry cache` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// List stored responses: size, age, freshness left, URL.
    Ls { json: bool },
    /// Totals: objects, bytes, fresh and stale counts.
    Stats { json: bool },
    /// Remove what is stored for a URL (all its variants).
    Purge { url: String },
    /// Remove everything stored.
    Clear,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManageError {
    #[error("cache directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("not a URL the cache stores: {0} (http:// or https:// with a host)")]
    BadUrl(String),
}

/// Runs `command` on the cache in `dir`.
pub fn run(dir: &Path, command: Command) -> Result<ExitCode, ManageError> {
    let dir = dir.to_path_buf();
    let dir_err = |source| ManageError::Dir {
        path: dir.clone(),
        source,
    };
    if !dir.join(disk::OBJECTS).is_dir() {
        if let Command::Purge { .. } | Command::Clear = command {
            eprintln!("ferry: no cache at {}", dir.display());
            return Ok(ExitCode::FAILURE);
        }
    }
    match command {
        Command::Ls { json } => {
            let mut rows = list(&dir);
            rows.sort_by(|a, b| a.url.cmp(&b.url));
            if json {
                for r in &rows {
                    println!("{}", serde_json::to_string(r).unwrap_or_default());
                }
            } else {
                println!("{:>10}  {:>8}  {:>10}  URL", "SIZE", "AGE", "FRESH");
                for r in &rows {
                    let fresh = if r.fresh_secs >= 0 {
                        human_secs(r.fresh_secs as u64)
                    } else {
                        format!("stale {}", human_secs(r.fresh_secs.unsigned_abs()))
                    };
                    println!(
                        "{:>10}  {:>8}  {:>10}  {}{}",
                        human_bytes(r.size),
                        human_secs(r.age_secs),
                        fresh,
                        r.url,
                        if r.vary.is_empty() {
                            String::new()
                        } else {
                            format!("  (varies on {})", r.vary.join(", "))
                        }
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Stats { json } => {
            let rows = list(&dir);
            let stats = Stats {
                dir: dir.display().to_string(),
                objects: rows.len(),
                body_bytes: rows.iter().map(|r| r.size).sum(),
                disk_bytes: disk_usage(&dir),
                fresh: rows.iter().filter(|r| r.fresh_secs > 0).count(),
                stale: rows.iter().filter(|r| r.fresh_secs <= 0).count(),
            };
            if json {
                println!("{}", serde_json::to_string(&stats).unwrap_or_default());
            } else {
                println!("directory   {}", stats.dir);
                println!("objects     {}", stats.objects);
                println!("fresh       {}", stats.fresh);
                println!("stale       {}", stats.stale);
                println!(
                    "body bytes  {} ({})",
                    stats.body_bytes,
                    human_bytes(stats.body_bytes)
                );
                println!(
                    "disk bytes  {} ({})",
                    stats.disk_bytes,
                    human_bytes(stats.disk_bytes)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Purge { url } => {
            let uri = url.parse().map_err(|_| ManageError::BadUrl(url.clone()))?;
            let key = CacheKey::from_uri(&uri).ok_or_else(|| ManageError::BadUrl(url.clone()))?;
            let removed = purge(&dir, &key).map_err(dir_err)?;
            if removed == 0 {
                eprintln!("ferry: not in the cache: {key}");
                Ok(ExitCode::FAILURE)
            } else {
                println!(
                    "purged {key} ({removed} file{})",
                    if removed == 1 { "" } else { "s" }
                );
                Ok(ExitCode::SUCCESS)
            }
        }
        Command::Clear => {
            let mut removed = 0;
            disk::scan(&dir, |id, _, _| {
                if std::fs::remove_file(disk::object_path(&dir, id)).is_ok() {
                    removed += 1;
                }
            })
            .map_err(dir_err)?;
            journal::append(&dir, Change::Clear).map_err(dir_err)?;
            println!("removed {removed} objects from {}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[derive(Debug, Serialize)]
struct Row {
    url: String,
    status: u16,
    size: u64,
    age_secs: u64,
    fresh_secs: i64,
    vary: Vec<String>,
    id: String,
}

#[derive(Debug, Serialize)]
struct Stats {
    dir: String,
    objects: usize,
    body_bytes: u64,
    disk_bytes: u64,
    fresh: usize,
    stale: usize,
}

/// Reads the head of every object file (damaged ones are skipped).
fn list(dir: &Path) -> Vec<Row> {
    let now = SystemTime::now();
    let mut ids = Vec::new();
    let _ = disk::scan(dir, |id, _, _| ids.push(id));
    ids.into_iter()
        .filter_map(|id| {
            let mut file = std::fs::File::open(disk::object_path(dir, id)).ok()?;
            let head = disk::read_head(&mut file).ok()?;
            if head.meta.kind != Kind::Object {
                return None;
            }
            let headers = head.meta.header_map();
            let lifetime = policy::freshness_lifetime(
                head.meta.status(),
                &headers,
                head.meta.response_time(),
                CacheConfig::DEFAULT_HEURISTIC_MAX,
            );
            let age =
                policy::current_age(policy::age_header(&headers), head.meta.response_time(), now);
            Some(Row {
                url: head.meta.key.clone(),
                status: head.meta.status,
                size: head.body_len,
                age_secs: age.as_secs(),
                fresh_secs: lifetime.as_secs() as i64 - age.as_secs() as i64,
                vary: head.meta.vary.clone(),
                id: id.to_hex(),
            })
        })
        .collect()
}

/// Removes the object (or vary marker and all its variants) stored for `key`.
fn purge(dir: &Path, key: &CacheKey) -> std::io::Result<usize> {
    let mut victims: Vec<ObjectId> = vec![key.id()];
    let mut file_is_marker = false;
    if let Ok(mut file) = std::fs::File::open(disk::object_path(dir, key.id())) {
        file_is_marker = disk::read_head(&mut file).is_ok_and(|h| h.meta.kind == Kind::VaryMarker);
    }
    if file_is_marker {
        let mut all = Vec::new();
        disk::scan(dir, |id, _, _| all.push(id))?;
        for id in all {
            let Ok(mut file) = std::fs::File::open(disk::object_path(dir, id)) else {
                continue;
            };
            if disk::read_head(&mut file).is_ok_and(|h| h.meta.key == key.as_str())
                && id != key.id()
            {
                victims.push(id);
            }
        }
    }
    let mut removed = 0;
    for id in victims {
        if std::fs::remove_file(disk::object_path(dir, id)).is_ok() {
            removed += 1;
            journal::append(dir, Change::Purge(id))?;
        }
    }
    Ok(removed)
}

fn disk_usage(dir: &Path) -> u64 {
    let mut total = 0;
    let _ = disk::scan(dir, |_, size, _| total += size);
    total
}

fn human_bytes(n: u64) -> String {
    bytesize::ByteSize::b(n).display().iec().to_string()
}

fn human_secs(s: u64) -> String {
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_secs(5), "5s");
        assert_eq!(human_secs(600), "10m");
        assert_eq!(human_secs(3 * 3600), "3h");
        assert_eq!(human_secs(5 * 86400), "5d");
    }
}
