//! Text for the terminal: strings cleaned of control and invisible characters
//! and cut or wrapped to a width, and numbers written short for people.

/// Characters that must not reach a terminal: what `ferry get` never prints
/// raw ([`ferry_client::report::is_unsafe_char`]: controls, line separators,
/// bidi overrides) and, since these columns hold hosts and URLs rather than
/// page titles, any other invisible formatting that could hide or reorder
/// text (zero-width characters, tags).
pub(super) fn is_unsafe(c: char) -> bool {
    ferry_client::report::is_unsafe_char(c)
        || matches!(
            c,
            '\u{00AD}'
                | '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2060}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{E0000}'..='\u{E007F}'
        )
}

/// `s` with each unsafe character replaced by `?`.
pub(super) fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if is_unsafe(c) { '?' } else { c })
        .collect()
}

/// `s` cleaned and cut to at most `width` characters, `...` marking a cut.
pub(super) fn fit(s: &str, width: usize) -> String {
    let cleaned = clean(s);
    if cleaned.chars().count() <= width {
        return cleaned;
    }
    if width < 4 {
        return cleaned.chars().take(width).collect();
    }
    let mut cut: String = cleaned.chars().take(width - 3).collect();
    cut.push_str("...");
    cut
}

/// `s` cleaned and broken into lines of at most `width` characters (at
/// spaces where it can).
pub(super) fn wrap_text(s: &str, width: usize) -> Vec<String> {
    let cleaned = clean(s);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in cleaned.split(' ') {
        let mut word = word.to_string();
        loop {
            let used = line.chars().count();
            let len = word.chars().count();
            let gap = usize::from(used > 0);
            if used + gap + len <= width {
                if gap == 1 {
                    line.push(' ');
                }
                line.push_str(&word);
                break;
            }
            if used > 0 {
                lines.push(std::mem::take(&mut line));
                continue;
            }
            // A word longer than a line.
            let head: String = word.chars().take(width).collect();
            word = word.chars().skip(width).collect();
            lines.push(head);
        }
    }
    lines.push(line);
    lines
}

// ---------------------------------------------------------------------------
// Numbers for people.

/// `1.5 KiB`; at most 9 characters.
pub(super) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if v >= 99.95 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// `1.5K`; at most 5 characters.
pub(super) fn short_bytes(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "K", "M", "G", "T", "P", "E"];
    if n < 1024 {
        return format!("{n}B");
    }
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if v >= 9.95 {
        format!("{v:.0}{}", UNITS[unit])
    } else {
        format!("{v:.1}{}", UNITS[unit])
    }
}

/// `n` in full if it fits `width`, else `12.3k`, `4.5M`...
pub(super) fn count_in(n: u64, width: usize) -> String {
    let full = n.to_string();
    if full.len() <= width {
        return full;
    }
    const UNITS: [&str; 6] = ["k", "M", "G", "T", "P", "E"];
    let mut v = n as f64;
    let mut unit = 0;
    v /= 1000.0;
    while v >= 999.5 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if v >= 99.95 {
        format!("{v:.0}{}", UNITS[unit])
    } else {
        format!("{v:.1}{}", UNITS[unit])
    }
}

/// A rate per second: `0.3`, `42.0`, `512`, `12.5k`.
pub(super) fn rate(v: f64) -> String {
    if !v.is_finite() || v < 0.0 {
        return "-".into();
    }
    if v < 100.0 {
        format!("{v:.1}")
    } else if v < 10_000.0 {
        format!("{v:.0}")
    } else {
        format!("{:.1}k", v / 1000.0)
    }
}

pub(super) fn percent(ratio: Option<f64>) -> String {
    match ratio {
        Some(r) if r.is_finite() => format!("{:.1}%", r * 100.0),
        _ => "-".into(),
    }
}

pub(super) fn millis(ms: Option<f64>) -> String {
    match ms {
        Some(v) if v.is_finite() && v >= 0.0 => {
            if v < 10.0 {
                format!("{v:.1}ms")
            } else if v < 1000.0 {
                format!("{v:.0}ms")
            } else if v < 60_000.0 {
                format!("{:.1}s", v / 1000.0)
            } else {
                format!("{:.0}s", v / 1000.0)
            }
        }
        _ => "-".into(),
    }
}

pub(super) fn uptime(secs: u64) -> String {
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
    if days > 0 {
        format!("{days}d {h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// How long ago `then_ms` was: `4s`, `12m`, `3h`, `2d`.
pub(super) fn age(then_ms: u64, now_ms: u64) -> String {
    if then_ms == 0 {
        return "-".into();
    }
    let secs = now_ms.saturating_sub(then_ms) / 1000;
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86_400 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}
