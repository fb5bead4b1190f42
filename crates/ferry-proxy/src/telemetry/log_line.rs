//! One access-log line from an [`AccessRecord`]: the common log format (plus
//! duration and cache status) or one JSON object, always one inert line
//! whatever the request carried, with timestamps formatted once a second.

use std::time::SystemTime;

use crate::config::LogFormat;
use crate::outcome::AccessRecord;

/// Appends the line (without newline) to `out`. The writer thread calls
/// this for every request, so it writes straight into its buffer and takes
/// the timestamp text from `clock`, which formats it once a second.
pub fn write_line(
    record: &AccessRecord,
    out: &mut String,
    format: LogFormat,
    clock: &mut TimeText,
) {
    use std::fmt::Write as _;
    match format {
        LogFormat::Common => {
            push_ip(out, record.client.ip());
            out.push_str(" - ");
            match record.user.as_deref() {
                Some(user) => push_escaped(out, user, true),
                None => out.push('-'),
            }
            out.push_str(" [");
            out.push_str(clock.clf(record.time));
            out.push_str("] \"");
            out.push_str(record.method.as_str());
            out.push(' ');
            push_escaped(out, &record.url, false);
            out.push(' ');
            out.push_str(record.version);
            out.push_str("\" ");
            out.push_str(itoa::Buffer::new().format(record.status));
            out.push(' ');
            out.push_str(itoa::Buffer::new().format(record.bytes));
            out.push(' ');
            out.push_str(itoa::Buffer::new().format(record.duration_us / 1000));
            out.push(' ');
            out.push_str(record.cache.log_token());
        }
        LogFormat::Json => {
            let value = serde_json::json!({
                "time": clock.rfc3339(record.time),
                "client": record.client.ip().to_string(),
                "user": record.user,
                "method": record.method.as_str(),
                "url": record.url,
                "version": record.version,
                "status": record.status,
                "bytes": record.bytes,
                "duration_ms": record.duration_us / 1000,
                "cache": record.cache.log_token(),
                "outcome": record.cache.class().as_str(),
                "error": record.error.map(|e| e.source().as_str()),
                "user_agent": record.user_agent,
                "referer": record.referer,
                "rule": record.rule.as_deref(),
                "group": record.group.as_deref(),
            });
            let start = out.len();
            let _ = write!(out, "{value}");
            escape_json_extras(out, start);
        }
    }
}

/// Appends `ip` as `Display` writes it; an IPv4 address, the usual case,
/// octet by octet (`Display` goes through the formatting machinery with
/// padding, a large part of a line's cost).
fn push_ip(out: &mut String, ip: std::net::IpAddr) {
    use std::fmt::Write as _;
    match ip {
        std::net::IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                out.push_str(itoa::Buffer::new().format(octet));
            }
        }
        std::net::IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
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

/// The log's timestamps, formatted once per second: every line in the same
/// second shares the text.
#[derive(Default)]
pub struct TimeText {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{CacheOutcome, Fwd, RequestKind};

    fn line_of(record: &AccessRecord, format: LogFormat) -> String {
        let mut line = String::new();
        write_line(record, &mut line, format, &mut TimeText::default());
        line
    }

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
    fn common_format_has_every_field() {
        assert_eq!(
            line_of(&record(), LogFormat::Common),
            "127.0.0.1 - - [09/Sep/2001:01:46:40 +0000] \"GET http://example.test/a HTTP/1.1\" 200 1234 7 MISS"
        );
    }

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for ip in [
            "0.0.0.0",
            "10.200.3.45",
            "255.255.255.255",
            "::1",
            "2001:db8::7",
        ] {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            let mut out = String::new();
            push_ip(&mut out, ip);
            assert_eq!(out, ip.to_string());
        }
    }

    #[test]
    fn json_format_is_one_object() {
        let line = line_of(&record(), LogFormat::Json);
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
            write_line(&r, &mut line, LogFormat::Common, &mut clock);
            assert!(line.contains(want), "{line} lacks {want}");
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
            let line = line_of(&r, format);
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
}
