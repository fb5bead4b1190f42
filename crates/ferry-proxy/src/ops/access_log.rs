//! The access log: one line per request, in common or JSON format, written by a
//! dedicated thread so the request path never waits on the disk or a lock.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Instant, SystemTime};

use serde::Deserialize;

use crate::error::Failure;
use crate::exchange::{CacheOutcome, RequestKind};
use crate::ops::activity::Activity;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Common log format plus duration (ms) and cache status.
    #[default]
    Common,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "common" => Ok(LogFormat::Common),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("{other:?} is not one of: common, json")),
        }
    }
}

/// What one request did; turned into one log line by the writer thread, so
/// the request path does no formatting.
#[derive(Debug, Clone)]
pub struct AccessRecord {
    pub time: SystemTime,
    pub client: SocketAddr,
    pub user: Option<String>,
    pub method: http::Method,
    /// The request target as text. A copy, not the `Uri`: that shares the
    /// connection's read buffer, which hyper could then not reuse for the
    /// next request while the record waits for the writer thread.
    pub url: String,
    pub version: &'static str,
    pub status: u16,
    pub bytes: u64,
    /// How long the request took, in microseconds (the log shows ms).
    pub duration_us: u64,
    /// What the cache did; the line shows `HIT`, `MISS` or `-` (and, in
    /// JSON, the outcome's class).
    pub cache: CacheOutcome,
    /// Where the request was routed (own page, tunnel, origin).
    pub kind: RequestKind,
    /// What failed, if the request failed.
    pub error: Option<Failure>,
    /// `User-Agent` and `Referer`, copied only for the JSON format (the
    /// common format has no place for them).
    pub user_agent: Option<String>,
    pub referer: Option<String>,
}

impl AccessRecord {
    #[cfg(test)]
    pub fn format(&self, format: LogFormat) -> String {
        let mut line = String::new();
        self.write_line(&mut line, format, &mut TimeText::default());
        line
    }

    /// Appends the line (without newline) to `out`. The writer thread calls
    /// this for every request, so it writes straight into its buffer and takes
    /// the timestamp text from `clock`, which formats it once a second.
    fn write_line(&self, out: &mut String, format: LogFormat, clock: &mut TimeText) {
        use std::fmt::Write as _;
        match format {
            LogFormat::Common => {
                let _ = write!(out, "{}", self.client.ip());
                out.push_str(" - ");
                match self.user.as_deref() {
                    Some(user) => push_escaped(out, user, true),
                    None => out.push('-'),
                }
                out.push_str(" [");
                out.push_str(clock.clf(self.time));
                out.push_str("] \"");
                out.push_str(self.method.as_str());
                out.push(' ');
                push_escaped(out, &self.url, false);
                out.push(' ');
                out.push_str(self.version);
                out.push_str("\" ");
                out.push_str(itoa::Buffer::new().format(self.status));
                out.push(' ');
                out.push_str(itoa::Buffer::new().format(self.bytes));
                out.push(' ');
                out.push_str(itoa::Buffer::new().format(self.duration_us / 1000));
                out.push(' ');
                out.push_str(self.cache.log_token());
            }
            LogFormat::Json => {
                let value = serde_json::json!({
                    "time": clock.rfc3339(self.time),
                    "client": self.client.ip().to_string(),
                    "user": self.user,
                    "method": self.method.as_str(),
                    "url": self.url,
                    "version": self.version,
                    "status": self.status,
                    "bytes": self.bytes,
                    "duration_ms": self.duration_us / 1000,
                    "cache": self.cache.log_token(),
                    "outcome": self.cache.class().as_str(),
                    "error": self.error.map(|e| e.source().as_str()),
                    "user_agent": self.user_agent,
                    "referer": self.referer,
                });
                let start = out.len();
                let _ = write!(out, "{value}");
                escape_json_extras(out, start);
            }
        }
    }
}

/// Whether a character must not reach a log line or a terminal as it is:
/// C0 and C1 controls, DEL, the Unicode line and paragraph separators, and
/// the bidirectional overrides that can make text read differently than it is.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Appends `text` to a common-format line with `"` and `\\` escaped and every
/// unsafe character written as `\xHH` or `\u{HHHH}` (and spaces too, for
/// fields that are space-delimited), so a line is always one parseable line.
fn push_escaped(out: &mut String, text: &str, escape_space: bool) {
    use std::fmt::Write as _;
    // The usual case, plain visible ASCII, is copied as it is.
    let plain = text.bytes().all(|b| {
        (0x21..0x7f).contains(&b) && b != b'"' && b != b'\\' || (b == b' ' && !escape_space)
    });
    if plain {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' ' if escape_space => out.push_str("\\x20"),
            c if is_unsafe_char(c) && (c as u32) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_unsafe_char(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// serde_json leaves C1 controls, DEL and the separators as they are (they
/// are valid in JSON strings); writes them as `\uHHHH` from `start` on, so
/// the line stays inert for the tools that read it.
fn escape_json_extras(out: &mut String, start: usize) {
    use std::fmt::Write as _;
    if !out[start..].chars().any(is_unsafe_char) {
        return;
    }
    let raw = out.split_off(start);
    for c in raw.chars() {
        if is_unsafe_char(c) {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
}

/// The text of a request target as the client sent it, without any
/// `user:password@` (credentials never reach a log or a page), built without
/// the formatting machinery (this runs for every request).
pub fn target_text(uri: &http::Uri) -> String {
    let path = uri.path_and_query().map_or("", |p| p.as_str());
    let Some(authority) = uri.authority() else {
        return if path.is_empty() {
            "/".into()
        } else {
            path.into()
        };
    };
    let scheme = uri.scheme_str().unwrap_or("");
    // A byte scan: the authority is short and usually has no userinfo.
    let full = authority.as_str();
    let host_port = match full.bytes().rposition(|b| b == b'@') {
        Some(at) => &full[at + 1..],
        None => full,
    };
    let mut text = String::with_capacity(scheme.len() + 3 + host_port.len() + path.len());
    if !scheme.is_empty() {
        text.push_str(scheme);
        text.push_str("://");
    }
    text.push_str(host_port);
    text.push_str(path);
    text
}

/// The log's timestamps, formatted once per second: every line in the same
/// second shares the text.
#[derive(Default)]
struct TimeText {
    clf: Option<(u64, String)>,
    rfc3339: Option<(u64, String)>,
}

impl TimeText {
    fn clf(&mut self, t: SystemTime) -> &str {
        once_a_second(&mut self.clf, t, clf_time)
    }

    fn rfc3339(&mut self, t: SystemTime) -> &str {
        once_a_second(&mut self.rfc3339, t, rfc3339)
    }
}

/// The text `render` gives for `t`, re-rendered only when the second changes.
fn once_a_second(
    slot: &mut Option<(u64, String)>,
    t: SystemTime,
    render: fn(SystemTime) -> String,
) -> &str {
    let second = unix_second(t);
    if slot.as_ref().is_none_or(|(s, _)| *s != second) {
        *slot = Some((second, render(t)));
    }
    slot.as_ref().map_or("", |(_, text)| text.as_str())
}

fn unix_second(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn clf_time(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    let fmt = time::macros::format_description!(
        "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
    );
    t.format(&fmt).unwrap_or_default()
}

fn rfc3339(t: SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::from(t))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

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
                r.write_line(&mut line, format, &mut clock);
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
                fwd: crate::exchange::Fwd::UriMiss,
                fwd_status: 200,
            },
            error: None,
            user_agent: None,
            referer: None,
        }
    }

    #[test]
    fn common_format_has_every_field() {
        assert_eq!(
            record().format(LogFormat::Common),
            "127.0.0.1 - - [09/Sep/2001:01:46:40 +0000] \"GET http://example.test/a HTTP/1.1\" 200 1234 7 MISS"
        );
    }

    #[test]
    fn json_format_is_one_object() {
        let line = record().format(LogFormat::Json);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["client"], "127.0.0.1");
        assert_eq!(v["status"], 200);
        assert_eq!(v["bytes"], 1234);
        assert_eq!(v["duration_ms"], 7);
        assert_eq!(v["cache"], "MISS");
        assert_eq!(v["outcome"], "miss");
        assert_eq!(v["error"], serde_json::Value::Null);
        assert_eq!(v["time"], "2001-09-09T01:46:40Z");
    }

    #[test]
    fn timestamps_follow_the_records_across_seconds() {
        let mut clock = TimeText::default();
        let base = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
        let mut line = String::new();
        for (offset_ms, want) in [
            (0, "[09/Sep/2001:01:46:40 +0000]"),
            (999, "[09/Sep/2001:01:46:40 +0000]"),
            (1000, "[09/Sep/2001:01:46:41 +0000]"),
            (0, "[09/Sep/2001:01:46:40 +0000]"),
        ] {
            let mut r = record();
            r.time = base + std::time::Duration::from_millis(offset_ms);
            line.clear();
            r.write_line(&mut line, LogFormat::Common, &mut clock);
            assert!(line.contains(want), "{line} lacks {want}");
        }
    }

    #[test]
    fn target_text_matches_the_uri_display() {
        for target in [
            "http://example.test/a?b=c",
            "https://Example.test:8443/",
            "http://example.test",
            "/healthz?x=1",
            "/",
            "example.test:443",
        ] {
            let uri: http::Uri = target.parse().unwrap();
            assert_eq!(target_text(&uri), uri.to_string(), "{target}");
        }
    }

    #[test]
    fn hostile_text_stays_on_one_inert_line_in_both_formats() {
        let hostile = "/a\"b\\c\u{1b}[2J\u{7}\u{85}\u{9b}\u{2028}\u{2029}\u{202e}\r\nX";
        let mut r = record();
        r.url = format!("http://example.test{hostile}");
        r.user = Some("eve \"x\"".into());
        r.user_agent = Some(hostile.into());
        r.referer = Some(hostile.into());
        for format in [LogFormat::Common, LogFormat::Json] {
            let line = r.format(format);
            assert!(
                !line.chars().any(is_unsafe_char),
                "{format:?}: unsafe characters left in {line:?}"
            );
            if format == LogFormat::Json {
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                assert_eq!(v["url"], format!("http://example.test{hostile}"));
                assert_eq!(v["user_agent"], hostile);
            } else {
                // Exactly two unescaped quotes: around the request line.
                let mut quotes = 0;
                let mut escaped = false;
                for c in line.chars() {
                    match (escaped, c) {
                        (false, '\\') => escaped = true,
                        (false, '"') => quotes += 1,
                        _ => escaped = false,
                    }
                }
                assert_eq!(quotes, 2, "{line}");
                assert!(line.contains("eve\\x20\\\"x\\\""), "{line}");
            }
        }
    }

    #[test]
    fn credentials_in_the_target_are_never_kept() {
        let uri: http::Uri = "http://alice:s3cret@example.test:8080/p?q=1"
            .parse()
            .unwrap();
        assert_eq!(target_text(&uri), "http://example.test:8080/p?q=1");
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
