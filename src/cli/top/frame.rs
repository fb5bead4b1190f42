//! The frame: one reading drawn as lines of at most [`WIDTH`] columns (summary,
//! rates, fetch slots, cache, top hosts and the last requests).

use super::stats::{Series, Stats, Summaries};
use super::text::{
    age, clean, count_in, fit, human_bytes, millis, percent, rate, short_bytes, uptime,
};

/// The widest line of a frame: fits an 80-column terminal without touching
/// its last column.
pub(super) const WIDTH: usize = 79;
const SHOWN_HOSTS: usize = 5;
const SHOWN_RECENT: usize = 10;

/// The outcomes in the order they are shown; others follow in the proxy's order.
const OUTCOMES: [&str; 11] = [
    "fresh_hit",
    "collapsed",
    "revalidated",
    "stale",
    "miss",
    "uncacheable",
    "bypass",
    "blocked",
    "error",
    "tunnel",
    "own_page",
];

/// A reading as lines of at most [`WIDTH`] characters, every one clean.
/// `now_ms` (Unix milliseconds) dates the recent requests.
pub(super) fn render(stats: &Stats, now_ms: u64) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let version = if stats.version.is_empty() {
        "?"
    } else {
        &stats.version
    };
    let listen = if stats.listen.is_empty() {
        "?".to_string()
    } else {
        stats.listen.join(", ")
    };
    out.push(format!(
        "ferry {version}   up {}   listening on {listen}",
        uptime(stats.uptime_seconds)
    ));
    out.push(String::new());

    summary_table(&mut out, &stats.summary);
    out.push(String::new());

    rates(&mut out, &stats.series);

    let fetch = &stats.fetch;
    out.push(format!(
        "fetch slots {}/{} in use, {} queued   connections open {}",
        fetch.in_use, fetch.slots, fetch.queued, stats.connections_open
    ));
    if let Some(clients) = fetch.clients.as_ref().filter(|c| !c.is_empty()) {
        let list: Vec<String> = clients
            .iter()
            .map(|c| {
                format!(
                    "{} {} held/{} waiting",
                    fit(&c.client, 39),
                    c.holding,
                    c.waiting
                )
            })
            .collect();
        out.push(format!("  by client: {}", list.join(", ")));
    }
    out.push(match &stats.cache {
        None => "cache off".to_string(),
        Some(c) => {
            let mut line = format!(
                "cache {} objects, {} of {}",
                c.objects,
                human_bytes(c.bytes),
                human_bytes(c.max_bytes)
            );
            if c.max_bytes > 0 {
                let used = c.bytes as f64 / c.max_bytes as f64;
                line.push_str(&format!(" ({:.0}%)", used * 100.0));
            }
            if let Some(memory) = c.memory_bytes {
                line.push_str(&format!(", {} in memory", human_bytes(memory)));
            }
            line.push_str(&format!(", {} evicted", c.evictions));
            line
        }
    });
    out.push(String::new());

    hosts_and_blocked(&mut out, stats);
    out.push(String::new());

    recent(&mut out, stats, now_ms);

    out.iter().map(|line| fit(line, WIDTH)).collect()
}

/// Why a list the proxy keeps is absent.
fn withheld(stats: &Stats) -> &'static str {
    if stats.admin == Some(false) {
        "(for admin clients only)"
    } else {
        "(not in the answer)"
    }
}

fn summary_table(out: &mut Vec<String>, summaries: &Summaries) {
    // 12 + 9 + 7 + 10 + 10 + 8 + 7 + 8 + 8 = 79 columns.
    out.push(format!(
        "{:<12}{:>9}{:>7}{:>10}{:>10}{:>8}{:>7}{:>8}{:>8}",
        "", "requests", "hit", "byte hit", "saved", "blocked", "errors", "p50", "p95"
    ));
    for (label, s) in [
        ("last 5 min", &summaries.last_5m),
        ("since start", &summaries.since_start),
    ] {
        let hit_ratio = s
            .request_hit_ratio
            .or_else(|| (s.requests > 0).then(|| s.hits as f64 / s.requests as f64));
        let moved = s.bytes_from_cache.saturating_add(s.bytes_from_origin);
        let byte_ratio = s
            .byte_hit_ratio
            .or_else(|| (moved > 0).then(|| s.bytes_from_cache as f64 / moved as f64));
        let saved = s.bytes_saved.unwrap_or(s.bytes_from_cache);
        out.push(format!(
            "{:<12}{:>9}{:>7}{:>10}{:>10}{:>8}{:>7}{:>8}{:>8}",
            label,
            count_in(s.requests, 8),
            percent(hit_ratio),
            percent(byte_ratio),
            human_bytes(saved),
            count_in(s.blocked, 7),
            count_in(s.errors, 6),
            millis(s.latency_p50_ms),
            millis(s.latency_p95_ms),
        ));
    }
}

/// The last bucket of each series.
fn rates(out: &mut Vec<String>, series: &Series) {
    let last = |values: &[Option<f64>]| values.last().copied().flatten();
    let mut named: Vec<(&str, f64)> = Vec::new();
    for outcome in OUTCOMES {
        if let Some((_, values)) = series
            .requests_per_second
            .iter()
            .find(|(n, _)| n == outcome)
        {
            named.push((outcome, last(values).unwrap_or(0.0)));
        }
    }
    for (name, values) in &series.requests_per_second {
        if !OUTCOMES.contains(&name.as_str()) {
            named.push((name, last(values).unwrap_or(0.0)));
        }
    }
    let over = if series.interval_seconds > 0 {
        format!(" (last {}s)", series.interval_seconds)
    } else {
        String::new()
    };
    let mut items = Vec::new();
    if named.is_empty() {
        items.push("no figures yet".to_string());
    } else {
        let total: f64 = named.iter().map(|(_, v)| v.max(0.0)).sum();
        items.push(format!("{} total,", rate(total)));
        items.extend(
            named
                .iter()
                .map(|(name, v)| format!("{} {}", fit(name, 20), rate(*v))),
        );
    }
    wrapped(out, &format!("req/s{over}:"), &items);

    let per_second = |values: &[Option<f64>]| match last(values) {
        Some(v) if v.is_finite() && v >= 0.0 => format!("{}/s", human_bytes(v.round() as u64)),
        _ => "-".into(),
    };
    out.push(format!(
        "bytes/s: from cache {}, from origin {}",
        per_second(&series.bytes_from_cache),
        per_second(&series.bytes_from_origin)
    ));
}

/// `label` then `items` separated by two spaces, continued on indented lines.
fn wrapped(out: &mut Vec<String>, label: &str, items: &[String]) {
    let indent = " ".repeat(label.chars().count().min(20));
    let mut line = label.to_string();
    let mut fresh = true;
    for item in items {
        let sep = if fresh { " " } else { "  " };
        if !fresh && line.chars().count() + sep.len() + item.chars().count() > WIDTH {
            out.push(std::mem::take(&mut line));
            line = format!("{indent} {item}");
        } else {
            line.push_str(sep);
            line.push_str(item);
        }
        fresh = false;
    }
    out.push(line);
}

/// Top hosts by requests on the left, top blocked on the right.
fn hosts_and_blocked(out: &mut Vec<String>, stats: &Stats) {
    // 49 + 3 + 27 = 79 columns.
    const LEFT: usize = 49;
    let mut left = vec![format!(
        "{:<30} {:>8} {:>9}",
        "top hosts", "requests", "bytes"
    )];
    match &stats.top_hosts {
        None => left.push(format!("  {}", withheld(stats))),
        Some(top) if top.by_requests.is_empty() => left.push("  (none yet)".into()),
        Some(top) => left.extend(top.by_requests.iter().take(SHOWN_HOSTS).map(|h| {
            format!(
                "  {:<28} {:>8} {:>9}",
                fit(&h.host, 28),
                count_in(h.requests, 8),
                human_bytes(h.bytes)
            )
        })),
    }
    let mut right = vec![format!("{:<18} {:>8}", "top blocked", "requests")];
    match &stats.top_blocked {
        None => right.push(format!("  {}", withheld(stats))),
        Some(top) if top.is_empty() => right.push("  (none yet)".into()),
        Some(top) => right.extend(
            top.iter()
                .take(SHOWN_HOSTS)
                .map(|h| format!("  {:<16} {:>8}", fit(&h.host, 16), count_in(h.requests, 8))),
        ),
    }
    for i in 0..left.len().max(right.len()) {
        let l = left.get(i).map_or("", String::as_str);
        let line = match right.get(i) {
            Some(r) => format!("{:<LEFT$} | {r}", fit(l, LEFT)),
            None => l.to_string(),
        };
        out.push(line.trim_end().to_string());
    }
}

fn recent(out: &mut Vec<String>, stats: &Stats, now_ms: u64) {
    out.push(format!("last {SHOWN_RECENT} requests"));
    let rows = match &stats.recent {
        None => {
            out.push(format!("  {}", withheld(stats)));
            return;
        }
        Some(rows) if rows.is_empty() => {
            out.push("  (none yet)".into());
            return;
        }
        Some(rows) => &rows[..rows.len().min(SHOWN_RECENT)],
    };
    let width_of = |s: &str, min: usize, max: usize| clean(s).chars().count().clamp(min, max);
    let client_w = rows
        .iter()
        .map(|r| width_of(&r.client, 6, 15))
        .max()
        .unwrap_or(6);
    let outcome_w = rows
        .iter()
        .map(|r| width_of(&r.outcome, 7, 11))
        .max()
        .unwrap_or(7);
    // age, client, status, outcome, bytes, time, then the request.
    let used = 4 + 1 + client_w + 1 + 3 + 1 + outcome_w + 1 + 5 + 1 + 6 + 1;
    let rest = WIDTH.saturating_sub(used);
    out.push(format!(
        "{:>4} {:<client_w$} {:>3} {:<outcome_w$} {:>5} {:>6} {}",
        "age", "client", "st", "outcome", "bytes", "time", "request"
    ));
    for r in rows {
        let status = if r.status == 0 {
            "-".to_string()
        } else {
            count_in(r.status, 3)
        };
        let method = if r.method.is_empty() {
            "?".to_string()
        } else {
            fit(&r.method, 10)
        };
        out.push(format!(
            "{:>4} {:<client_w$} {:>3} {:<outcome_w$} {:>5} {:>6} {}",
            age(r.time_ms, now_ms),
            fit(&r.client, client_w),
            status,
            fit(&r.outcome, outcome_w),
            short_bytes(r.bytes),
            millis(r.duration_ms),
            fit(&format!("{method} {}", r.url), rest),
        ));
    }
}
