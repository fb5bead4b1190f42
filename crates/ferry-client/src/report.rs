//! Telling the user what happened: one result line per URL (URL → file,
//! status, size, time, the proxy's cache status), the same as a JSON object for
//! `--json`, and progress while downloads run: indicatif bars when standard
//! error is a terminal, plain lines otherwise.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use crate::complete::AssetReport;
use crate::job::{Observer, Outcome};

/// Whether a character must not reach the terminal as it is: C0 and C1
/// controls (escape sequences start with them), DEL, the Unicode line and
/// paragraph separators, and the bidirectional overrides.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every unsafe character written as `\u{HHHH}`: what comes
/// from an origin (titles, error pages, headers) never drives the terminal.
pub fn inert(text: &str) -> String {
    if !text.chars().any(is_unsafe_char) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe_char(c) {
            out.push_str(&format!("\\u{{{:04x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// The human-readable result line for one URL (inert: see [`inert`]).
pub fn text_line(o: &Outcome) -> String {
    inert(&text_line_raw(o))
}

fn text_line_raw(o: &Outcome) -> String {
    let url = o.shown_url();
    let redirected = match (&o.url, &o.final_url) {
        (Some(a), Some(b)) if a != b => format!(" (→ {b})"),
        _ => String::new(),
    };
    let cache = o.cache.as_deref().unwrap_or("-");
    let time = human_duration(o.elapsed);
    match (&o.error, &o.file) {
        (None, Some(file)) => format!(
            "{url}{redirected} → {}  {}  {}  {time}  cache: {cache}{}",
            file.display(),
            status_text(o.status),
            HumanBytes(o.bytes),
            assets_text(o.assets.as_ref()),
        ),
        (None, None) => format!("{url}{redirected} → (nothing saved)  {time}"),
        (Some(err), saved) => {
            let saved = saved
                .as_ref()
                .map(|f| format!(" (saved as {})", f.display()))
                .unwrap_or_default();
            let cache = if o.status.is_some() {
                format!("  cache: {cache}")
            } else {
                String::new()
            };
            format!("{url}{redirected} ✗ {err}{saved}  {time}{cache}")
        }
    }
}

/// The `--json` object for one URL. serde_json escapes C0 controls; the
/// other unsafe characters are written as `\uHHHH` too.
pub fn json_line(o: &Outcome) -> String {
    let line = json_value(o).to_string();
    if !line.chars().any(is_unsafe_char) {
        return line;
    }
    line.chars()
        .map(|c| {
            if is_unsafe_char(c) {
                format!("\\u{:04x}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn json_value(o: &Outcome) -> serde_json::Value {
    json!({
        "url": o.shown_url(),
        "final_url": o.final_url.as_ref().map(|u| u.to_string()),
        "ok": o.ok(),
        "file": o.file.as_ref().map(|f| f.display().to_string()),
        "status": o.status.map(|s| s.as_u16()),
        "bytes": o.bytes,
        "elapsed_ms": o.elapsed.as_millis() as u64,
        "cache": o.cache,
        "content_type": o.content_type,
        "title": o.title,
        "error": o.error.as_ref().map(|e| e.to_string()),
        "error_kind": o.error.as_ref().map(|e| e.kind()),
        "assets": assets_json(o.assets.as_ref()),
    })
}

/// `  assets: 12 inlined, 2 failed` for a page saved with `--complete`.
fn assets_text(report: Option<&AssetReport>) -> String {
    match report {
        None => String::new(),
        Some(AssetReport {
            not_completed: Some(why),
            ..
        }) => format!("  assets: not inlined ({why})"),
        Some(r) => format!("  assets: {} inlined, {} failed", r.inlined, r.failed.len()),
    }
}

/// How many failed assets `--json` lists by name.
const JSON_FAILURES: usize = 50;

fn assets_json(report: Option<&AssetReport>) -> serde_json::Value {
    match report {
        None => serde_json::Value::Null,
        Some(r) => json!({
            "inlined": r.inlined,
            "failed": r.failed.len(),
            "failures": r.failed.iter().take(JSON_FAILURES)
                .map(|(url, reason)| json!({"url": url, "reason": reason}))
                .collect::<Vec<_>>(),
            "not_completed": r.not_completed,
        }),
    }
}

fn status_text(status: Option<StatusCode>) -> String {
    status.map_or_else(|| "-".to_string(), |s| s.to_string())
}

/// `35 ms`, `1.2 s`, `2 min 5 s`.
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// How `ferry get` shows progress.
pub enum Progress {
    /// Bars on standard error (a terminal).
    Bars(MultiProgress),
    /// A line on standard error when each URL starts and ends.
    Plain,
    /// Nothing but errors (`--quiet`).
    Quiet,
}

impl Progress {
    pub fn choose(quiet: bool, stderr_is_terminal: bool) -> Progress {
        if quiet {
            Progress::Quiet
        } else if stderr_is_terminal {
            Progress::Bars(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
        } else {
            Progress::Plain
        }
    }

    /// A URL starts (it has a fetch slot).
    pub fn start(&self, url: &str) -> Tracker {
        match self {
            Progress::Bars(multi) => {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(spinner_style());
                bar.set_prefix(inert(&short(url, 48)));
                bar.set_message("waiting for the proxy");
                bar.enable_steady_tick(Duration::from_millis(120));
                Tracker {
                    observer: Arc::new(BarObserver { bar: bar.clone() }),
                    bar: Some(bar),
                }
            }
            Progress::Plain => {
                eprintln!("ferry: fetching {}", inert(url));
                Tracker::silent()
            }
            Progress::Quiet => Tracker::silent(),
        }
    }

    /// A URL is done: its bar shows the result; plain mode prints a line to
    /// standard error, quiet mode only for failures.
    pub fn finish(&self, tracker: &Tracker, outcome: &Outcome) {
        match (self, &tracker.bar) {
            (Progress::Bars(_), Some(bar)) => {
                let message = match (&outcome.error, &outcome.file) {
                    (None, Some(f)) => format!("✓ {}", f.display()),
                    (Some(e), _) => format!("✗ {e}"),
                    (None, None) => "✓".to_string(),
                };
                bar.set_style(done_style());
                bar.finish_with_message(inert(&message));
            }
            (Progress::Quiet, _) | (Progress::Bars(_), None) => {
                if let Some(e) = &outcome.error {
                    eprintln!("{}", inert(&format!("ferry: {}: {e}", outcome.shown_url())));
                }
            }
            (Progress::Plain, _) => match (&outcome.error, &outcome.file) {
                (None, Some(f)) => eprintln!(
                    "{}",
                    inert(&format!(
                        "ferry: saved {} → {}",
                        outcome.shown_url(),
                        f.display()
                    ))
                ),
                (None, None) => {
                    eprintln!("{}", inert(&format!("ferry: done {}", outcome.shown_url())))
                }
                (Some(e), _) => {
                    eprintln!("{}", inert(&format!("ferry: {}: {e}", outcome.shown_url())))
                }
            },
        }
    }

    /// Removes the bars before the summary is printed.
    pub fn clear(&self) {
        if let Progress::Bars(multi) = self {
            let _ = multi.clear();
        }
    }
}

/// One URL's progress display.
pub struct Tracker {
    pub observer: Arc<dyn Observer>,
    bar: Option<ProgressBar>,
}

impl Tracker {
    fn silent() -> Tracker {
        Tracker {
            observer: Arc::new(crate::job::Unobserved),
            bar: None,
        }
    }
}

struct BarObserver {
    bar: ProgressBar,
}

impl Observer for BarObserver {
    fn response(&self, status: StatusCode, length: Option<u64>) {
        if let (Some(len), true) = (length, status.is_success()) {
            self.bar.set_length(len);
            self.bar.set_style(bar_style());
        }
        self.bar.set_message(inert(&status.to_string()));
    }
    fn bytes(&self, n: u64) {
        self.bar.inc(n);
    }
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {prefix}  {bytes} {binary_bytes_per_sec}  {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{spinner} {prefix}  [{bar:24}] {bytes}/{total_bytes} {binary_bytes_per_sec}  {msg}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar())
}

fn done_style() -> ProgressStyle {
    ProgressStyle::with_template("  {prefix}  {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// `text` cut to `max` characters with an ellipsis in the middle.
fn short(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_string();
    }
    let keep = max.saturating_sub(1) / 2;
    let head: String = text.chars().take(keep).collect();
    let tail: String = text.chars().skip(count - keep).collect();
    format!("{head}…{tail}")
}
