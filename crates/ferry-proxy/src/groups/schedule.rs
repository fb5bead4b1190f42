//! When a group's deny rules apply: days of the week and local times of
//! day, as operators write them (`Mon-Fri 08:00-15:00`, `Sat,Sun`), like
//! Squid's `time` ACL. Parsing, the check for one moment ([`Schedule::covers`])
//! and the canonical form shown on the dashboard live here, as pure
//! functions; which group a client is in is `group.rs`.
//!
//! The grammar, entries separated by `;`:
//!
//! ```text
//! entry  = [days] [ranges]       days absent: every day; ranges absent: all day
//! days   = day ("," day)* | day "-" day   (Fri-Mon wraps the week)
//! ranges = HH:MM-HH:MM ("," HH:MM-HH:MM)*
//! ```
//!
//! An entry's days end where its first digit is, so `Mon-Fri 08:00-12:00,
//! 13:00-15:00` needs no other separator. `24:00` is the end of a day.
//! A range whose end is before its start runs overnight: `Fri 22:00-06:00`
//! is Friday 22:00 to Saturday 06:00, as an operator reading it aloud
//! means. A range with its end equal to its start is refused: it could mean
//! nothing or the whole day, and `00:00-24:00` says the latter plainly.
//!
//! A schedule is kept twice: the entries as written (for the canonical
//! form) and, per weekday, the minute ranges they cover with overnight
//! parts already moved to the next day, so `covers` is a scan of a few
//! pairs on the request path.

use std::fmt;
use std::str::FromStr;

#[cfg(test)]
use jiff::civil::DateTime;
use jiff::civil::Weekday;

/// Minutes in a day; `24:00` is this.
const DAY_END: u16 = 24 * 60;

const SHORT_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const FULL_NAMES: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// At most this much of an operator's text is quoted back in an error, so a
/// megabyte of junk does not become a megabyte of log line.
const QUOTE_LIMIT: usize = 60;

/// Why a schedule (or a `--at` moment) cannot be read; each names the part
/// that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    #[error("the schedule is empty; write e.g. \"Mon-Fri 08:00-15:00\"")]
    Empty,
    #[error("{part:?}: unknown day {day:?}; write Mon, Tue, Wed, Thu, Fri, Sat or Sun")]
    UnknownDay { part: String, day: String },
    #[error("{part:?}: {time:?} is not a time of day; write HH:MM from 00:00 to 24:00")]
    BadTime { part: String, time: String },
    #[error("{part:?}: {why}")]
    BadPart { part: String, why: &'static str },
    #[error("{text:?} is not a moment; write a day and a time, e.g. \"Tue 09:00\"")]
    BadMoment { text: String },
}

/// A day of the week and a minute of that day, local time: what a schedule
/// is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalMoment {
    pub weekday: Weekday,
    /// 0 (00:00) to 1439 (23:59); a larger value is covered by nothing.
    pub minute_of_day: u16,
}

impl LocalMoment {
    /// A moment for a group without a schedule (whose rules apply always,
    /// so the moment is never looked at): the clock need not be read.
    pub const ALWAYS: LocalMoment = LocalMoment {
        weekday: Weekday::Monday,
        minute_of_day: 0,
    };

    /// The moment now in the machine's time zone (`TZ` if set).
    pub fn now() -> LocalMoment {
        let local = super::clock::now();
        LocalMoment {
            weekday: local.weekday,
            minute_of_day: local.minute_of_day,
        }
    }

    /// The moment a local date and time falls in (seconds dropped).
    #[cfg(test)]
    pub fn of(at: DateTime) -> LocalMoment {
        let local = super::clock::of(at);
        LocalMoment {
            weekday: local.weekday,
            minute_of_day: local.minute_of_day,
        }
    }

    /// `Tue 09:00` (or `tuesday 9:00`), as `--at` takes it.
    pub fn parse(text: &str) -> Result<LocalMoment, ScheduleError> {
        let bad = || ScheduleError::BadMoment { text: quoted(text) };
        let mut words = text.split_whitespace();
        let (Some(day), Some(time), None) = (words.next(), words.next(), words.next()) else {
            return Err(bad());
        };
        let day = day_index(day).ok_or_else(bad)?;
        let minute = parse_time(time).filter(|&m| m < DAY_END).ok_or_else(bad)?;
        Ok(LocalMoment {
            weekday: weekday(day),
            minute_of_day: minute,
        })
    }
}

impl FromStr for LocalMoment {
    type Err = ScheduleError;

    fn from_str(text: &str) -> Result<LocalMoment, ScheduleError> {
        LocalMoment::parse(text)
    }
}

impl fmt::Display for LocalMoment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let day = SHORT_NAMES[day_of(self.weekday)];
        write!(f, "{day} {}", Clock(self.minute_of_day))
    }
}

/// The days and times a group's deny rules apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// As written, in order, for the canonical form.
    entries: Vec<Entry>,
    /// Per weekday, Monday first: the minutes `[start, end)` covered, with
    /// overnight ranges split at midnight.
    week: [Vec<(u16, u16)>; 7],
}

/// One `;`-separated part: some days, some ranges on each of them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    days: Days,
    ranges: Vec<Range>,
}

/// Bit `i` is weekday `i`, Monday = 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Days(u8);

impl Days {
    const ALL: Days = Days(0x7f);

    fn has(self, day: usize) -> bool {
        self.0 & (1 << day) != 0
    }
}

/// Minutes from midnight; `end <= start` means overnight, into the next day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    start: u16,
    end: u16,
}

const WHOLE_DAY: Range = Range {
    start: 0,
    end: DAY_END,
};

impl Schedule {
    /// Reads `Mon-Fri 08:00-15:00; Sat 10:00-12:00` (see the module header).
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let mut entries = Vec::new();
        for part in text.split(';') {
            // A trailing `;` is harmless; an entry of nothing is skipped.
            if part.trim().is_empty() {
                continue;
            }
            entries.push(parse_entry(part.trim())?);
        }
        if entries.is_empty() {
            return Err(ScheduleError::Empty);
        }
        let mut week: [Vec<(u16, u16)>; 7] = Default::default();
        for entry in &entries {
            for day in (0..7).filter(|&d| entry.days.has(d)) {
                for range in &entry.ranges {
                    if range.start < range.end {
                        week[day].push((range.start, range.end));
                    } else {
                        week[day].push((range.start, DAY_END));
                        if range.end > 0 {
                            week[(day + 1) % 7].push((0, range.end));
                        }
                    }
                }
            }
        }
        Ok(Schedule { entries, week })
    }

    /// Whether `at` falls in one of the schedule's ranges.
    pub fn covers(&self, at: LocalMoment) -> bool {
        let minute = at.minute_of_day;
        self.week[day_of(at.weekday)]
            .iter()
            .any(|&(start, end)| start <= minute && minute < end)
    }
}

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(text: &str) -> Result<Schedule, ScheduleError> {
        Schedule::parse(text)
    }
}

/// The canonical form: `Mon-Fri 08:00-12:00, 13:00-15:00; Sat,Sun
/// 00:00-24:00`. Day lists are sorted and merged into runs; ranges stay in
/// the order written. It parses back to the same schedule.
impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, entry) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{} ", entry.days)?;
            for (j, range) in entry.ranges.iter().enumerate() {
                if j > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{}-{}", Clock(range.start), Clock(range.end))?;
            }
        }
        Ok(())
    }
}

/// Runs of consecutive days, read around the week from the first day
/// after a day not in the set (so `Fri-Mon` stays one run): one day
/// `Mon`, two `Sat,Sun`, more `Mon-Fri`.
impl fmt::Display for Days {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(gap) = (0..7).find(|&d| !self.has(d)) else {
            return f.write_str("Mon-Sun");
        };
        let mut runs: Vec<(usize, usize)> = Vec::new();
        for step in 1..=7 {
            let day = (gap + step) % 7;
            if !self.has(day) {
                continue;
            }
            match runs.last_mut() {
                Some((_, len)) if self.has((day + 6) % 7) => *len += 1,
                _ => runs.push((day, 1)),
            }
        }
        // Monday first, as a week is read; a run across Sunday sorts by
        // its first day.
        runs.sort_by_key(|&(first, _)| first);
        for (i, &(first, len)) in runs.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let last = SHORT_NAMES[(first + len - 1) % 7];
            match len {
                1 => f.write_str(SHORT_NAMES[first])?,
                2 => write!(f, "{},{last}", SHORT_NAMES[first])?,
                _ => write!(f, "{}-{last}", SHORT_NAMES[first])?,
            }
        }
        Ok(())
    }
}

/// `HH:MM`, from minutes after midnight.
struct Clock(u16);

impl fmt::Display for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

fn parse_entry(text: &str) -> Result<Entry, ScheduleError> {
    // Day names have no digits and times start with one; an ASCII digit's
    // index is always a char boundary.
    // Symbols just before that digit (`+8:00`) belong to the time, so the
    // error names the time, not a day.
    let digit = text
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or(text.len());
    let split = text[..digit]
        .rfind(|c: char| c.is_whitespace() || c.is_alphabetic())
        .map_or(0, |i| {
            i + text[i..].chars().next().map_or(1, char::len_utf8)
        });
    let (days, times) = text.split_at(split);
    let days = if days.trim().is_empty() {
        Days::ALL
    } else {
        parse_days(days.trim())?
    };
    let ranges = if times.trim().is_empty() {
        vec![WHOLE_DAY]
    } else {
        parse_ranges(times.trim())?
    };
    Ok(Entry { days, ranges })
}

fn parse_days(text: &str) -> Result<Days, ScheduleError> {
    let mut days = 0u8;
    for piece in text.split(',').map(str::trim) {
        if piece.is_empty() {
            return Err(bad_part(text, "an empty day in the list"));
        }
        let mut ends = piece.split('-').map(str::trim);
        let (first, last) = match (ends.next(), ends.next(), ends.next()) {
            (Some(first), None, _) => (first, first),
            (Some(first), Some(last), None) => (first, last),
            _ => return Err(bad_part(piece, "a day range is two days, e.g. Mon-Fri")),
        };
        let unknown = |day: &str| ScheduleError::UnknownDay {
            part: quoted(piece),
            day: quoted(day),
        };
        let first = day_index(first).ok_or_else(|| unknown(first))?;
        let last = day_index(last).ok_or_else(|| unknown(last))?;
        // Walk forward, wrapping Sunday to Monday: Fri-Mon is four days.
        let mut day = first;
        loop {
            days |= 1 << day;
            if day == last {
                break;
            }
            day = (day + 1) % 7;
        }
    }
    Ok(Days(days))
}

fn parse_ranges(text: &str) -> Result<Vec<Range>, ScheduleError> {
    let mut ranges = Vec::new();
    for piece in text.split(',').map(str::trim) {
        if piece.is_empty() {
            return Err(bad_part(text, "an empty time range in the list"));
        }
        if piece.chars().any(char::is_alphabetic) {
            return Err(bad_part(
                piece,
                "days after times; separate entries with ';', e.g. \
                 \"Mon-Fri 08:00-15:00; Sat 10:00-12:00\"",
            ));
        }
        let Some((start, end)) = piece.split_once('-') else {
            return Err(bad_part(
                piece,
                "a time range is start-end, e.g. 08:00-15:00",
            ));
        };
        let time = |text: &str| {
            parse_time(text.trim()).ok_or_else(|| ScheduleError::BadTime {
                part: quoted(piece),
                time: quoted(text.trim()),
            })
        };
        let (start, mut end) = (time(start)?, time(end)?);
        if start == DAY_END {
            return Err(bad_part(piece, "24:00 is the end of a day; start at 00:00"));
        }
        if start == end {
            return Err(bad_part(
                piece,
                "the range starts where it ends; write 00:00-24:00 for the whole day",
            ));
        }
        if end == 0 {
            // `22:00-00:00` is `22:00-24:00`: say it one way.
            end = DAY_END;
        }
        ranges.push(Range { start, end });
    }
    Ok(ranges)
}

/// `08:00`, `8:00`, `24:00`: minutes after midnight, or `None`.
fn parse_time(text: &str) -> Option<u16> {
    let (hours, minutes) = text.split_once(':')?;
    let digits = |s: &str, len: std::ops::RangeInclusive<usize>| {
        len.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(hours, 1..=2) || !digits(minutes, 2..=2) {
        return None;
    }
    let (hours, minutes) = (hours.parse::<u16>().ok()?, minutes.parse::<u16>().ok()?);
    if minutes > 59 || hours > 24 || (hours == 24 && minutes > 0) {
        return None;
    }
    Some(hours * 60 + minutes)
}

/// Monday = 0, from `Mon` or `Monday` in any case.
fn day_index(name: &str) -> Option<usize> {
    (0..7).find(|&d| {
        name.eq_ignore_ascii_case(SHORT_NAMES[d]) || name.eq_ignore_ascii_case(FULL_NAMES[d])
    })
}

fn day_of(weekday: Weekday) -> usize {
    // 0..=6 by jiff's definition.
    usize::try_from(weekday.to_monday_zero_offset()).unwrap_or(0) % 7
}

fn weekday(day: usize) -> Weekday {
    [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ][day % 7]
}

fn bad_part(part: &str, why: &'static str) -> ScheduleError {
    ScheduleError::BadPart {
        part: quoted(part),
        why,
    }
}

/// The operator's text for an error message, cut at [`QUOTE_LIMIT`] chars.
fn quoted(text: &str) -> String {
    match text.char_indices().nth(QUOTE_LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> LocalMoment {
        LocalMoment::parse(text).unwrap()
    }

    #[test]
    fn schedules_cover_what_they_say() {
        let cases: &[(&str, &str, bool)] = &[
            ("Mon-Fri 08:00-15:00", "Mon 08:00", true),
            ("Mon-Fri 08:00-15:00", "Wed 14:59", true),
            ("Mon-Fri 08:00-15:00", "Fri 15:00", false),
            ("Mon-Fri 08:00-15:00", "Mon 07:59", false),
            ("Mon-Fri 08:00-15:00", "Sat 09:00", false),
            ("mon-FRI 8:00-15:00", "Tue 08:00", true),
            ("Monday-Friday 08:00-15:00", "Thu 10:00", true),
            ("Sat,Sun 00:00-24:00", "Sun 23:59", true),
            ("Sat,Sun 00:00-24:00", "Sat 00:00", true),
            ("Sat,Sun 00:00-24:00", "Mon 00:00", false),
            ("Sat, Sun", "Sun 12:00", true),
            ("08:00-09:00", "Sun 08:30", true),
            ("08:00-09:00", "Sun 09:30", false),
            ("Fri-Mon 10:00-11:00", "Sun 10:00", true),
            ("Fri-Mon 10:00-11:00", "Mon 10:00", true),
            ("Fri-Mon 10:00-11:00", "Tue 10:00", false),
            ("Fri-Mon 10:00-11:00", "Thu 10:00", false),
            ("Mon-Fri 08:00-12:00, 13:00-15:00", "Tue 12:30", false),
            ("Mon-Fri 08:00-12:00, 13:00-15:00", "Tue 13:00", true),
            ("Mon 08:00-09:00; Wed 10:00-11:00", "Wed 10:59", true),
            ("Mon 08:00-09:00; Wed 10:00-11:00", "Mon 10:30", false),
            ("Mon 08:00-09:00;", "Mon 08:00", true),
            // Overnight ranges run into the next day.
            ("Fri 22:00-06:00", "Fri 23:00", true),
            ("Fri 22:00-06:00", "Sat 05:59", true),
            ("Fri 22:00-06:00", "Sat 06:00", false),
            ("Fri 22:00-06:00", "Fri 05:00", false),
            ("Fri 22:00-06:00", "Fri 21:59", false),
            ("Sun 23:00-01:00", "Mon 00:30", true),
            ("Mon-Fri 22:00-00:00", "Tue 23:59", true),
            ("Mon-Fri 22:00-00:00", "Wed 00:00", false),
        ];
        for (schedule, moment, want) in cases {
            let s = Schedule::parse(schedule).unwrap();
            assert_eq!(s.covers(at(moment)), *want, "{schedule:?} at {moment}");
        }
        let s = Schedule::parse("Mon 00:00-24:00").unwrap();
        let odd = LocalMoment {
            weekday: Weekday::Monday,
            minute_of_day: 5000,
        };
        assert!(
            !s.covers(odd),
            "a minute past the day is covered by nothing"
        );
    }

    #[test]
    fn the_canonical_form_is_tidy_and_reads_back() {
        let cases: &[(&str, &str)] = &[
            ("Mon-Fri 08:00-15:00", "Mon-Fri 08:00-15:00"),
            ("mon-fri 8:00-15:00", "Mon-Fri 08:00-15:00"),
            ("Sun,Sat", "Sat,Sun 00:00-24:00"),
            ("08:00-09:00", "Mon-Sun 08:00-09:00"),
            ("Fri-Mon 10:00-11:00", "Fri-Mon 10:00-11:00"),
            ("Sun,Mon,Wed,Sat 10:00-11:00", "Wed,Sat-Mon 10:00-11:00"),
            ("Mon,Wed,Fri 10:00-11:00", "Mon,Wed,Fri 10:00-11:00"),
            ("Mon-Sun 01:00-02:00", "Mon-Sun 01:00-02:00"),
            ("Tue-Mon 01:00-02:00", "Mon-Sun 01:00-02:00"),
            ("Thu 22:00-00:00", "Thu 22:00-24:00"),
            (
                "Mon-Fri 08:00-12:00,13:00-15:00 ; Sat 10:00-12:00;",
                "Mon-Fri 08:00-12:00, 13:00-15:00; Sat 10:00-12:00",
            ),
            ("Fri 22:00-06:00", "Fri 22:00-06:00"),
        ];
        for (input, want) in cases {
            let s = Schedule::parse(input).unwrap();
            assert_eq!(s.to_string(), *want, "{input:?}");
            let again = Schedule::parse(&s.to_string()).unwrap();
            assert_eq!(again.week, s.week, "{input:?} reads back");
            assert_eq!(again.to_string(), *want);
        }
    }

    #[test]
    fn errors_name_the_bad_part() {
        let cases: &[(&str, &str)] = &[
            ("Mon-Fry", r#""Mon-Fry": unknown day "Fry""#),
            ("Mon-Fry 08:00-09:00", r#""Mon-Fry": unknown day "Fry""#),
            ("Lundi 08:00-09:00", r#"unknown day "Lundi""#),
            ("", "empty"),
            (" ; ;", "empty"),
            (
                "Mon 08:00-25:00",
                r#""08:00-25:00": "25:00" is not a time of day"#,
            ),
            ("Mon 08:60-09:00", r#""08:60" is not a time"#),
            ("Mon 24:01-09:00", r#""24:01" is not a time"#),
            ("Mon 8-9", r#""8" is not a time"#),
            ("Mon 08:00", "start-end"),
            ("Mon 08:00-09:00-10:00", r#""09:00-10:00" is not a time"#),
            ("Mon 09:00-09:00", "00:00-24:00 for the whole day"),
            ("Mon 00:00-00:00", "starts where it ends"),
            ("Mon 24:00-09:00", "24:00 is the end of a day"),
            (
                "Mon-Tue-Wed 08:00-09:00",
                r#""Mon-Tue-Wed": a day range is two days"#,
            ),
            ("Mon,,Tue 08:00-09:00", "empty day"),
            ("Mon 08:00-09:00,", "empty time range"),
            (
                "Mon-Fri 08:00-15:00, Sat 10:00-12:00",
                "separate entries with ';'",
            ),
            ("Mon +8:00-09:00", r#""+8:00" is not a time"#),
        ];
        for (input, want) in cases {
            let err = Schedule::parse(input).unwrap_err().to_string();
            assert!(err.contains(want), "{input:?}: {err}");
        }
    }

    #[test]
    fn junk_is_refused_without_panics() {
        let long = "Mon".repeat(100_000);
        let junk: Vec<String> = vec![
            "\0".into(),
            "💥".into(),
            "Mon 08:00-09:00💥".into(),
            "Mön 08:00-09:00".into(),
            "Mon ０８:００-09:00".into(),
            "Mon 99999999999999999999:00-09:00".into(),
            "Mon 08:99999999999999999999-09:00".into(),
            "-".into(),
            ":".into(),
            "-:-".into(),
            ",;,;".into(),
            "Mon-".into(),
            "-Mon".into(),
            "Mon 08:00-".into(),
            "Mon -09:00".into(),
            "Mon 08::00-09:00".into(),
            "Mon 008:00-09:00".into(),
            "Mon 8:0-9:00".into(),
            "\u{202e}Mon 08:00-09:00".into(),
            long.clone(),
            format!("{long} 08:00-09:00"),
            format!("Mon {}", "08:00-09:00,".repeat(10_000)),
        ];
        for text in &junk {
            match Schedule::parse(text) {
                Ok(s) => panic!("{text:?} parsed as {s}"),
                Err(e) => assert!(e.to_string().len() < 400, "short message for {text:?}"),
            }
            assert!(LocalMoment::parse(text).is_err());
        }
        // Every string of up to four pieces from an alphabet of the
        // grammar's own tokens: parse or refuse, and what parses reads back.
        let tokens = [
            "Mon", "sun", "-", ",", ";", " ", "08:00", "24:00", "0:00", ":", "9", "x", "é",
        ];
        let mut text = String::new();
        for a in 0..tokens.len() {
            for b in 0..tokens.len() {
                for c in 0..tokens.len() {
                    for d in 0..tokens.len() {
                        text.clear();
                        for i in [a, b, c, d] {
                            text.push_str(tokens[i]);
                        }
                        if let Ok(s) = Schedule::parse(&text) {
                            let again = Schedule::parse(&s.to_string()).unwrap();
                            assert_eq!(again.week, s.week, "{text:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn moments_parse_show_and_come_from_local_times() {
        assert_eq!(
            at("Tue 09:00"),
            LocalMoment {
                weekday: Weekday::Tuesday,
                minute_of_day: 540,
            }
        );
        assert_eq!(at("  sunday   23:59 ").to_string(), "Sun 23:59");
        assert_eq!(
            "Wed 0:05".parse::<LocalMoment>().unwrap().to_string(),
            "Wed 00:05"
        );
        for bad in [
            "Tue",
            "09:00",
            "Tue 24:00",
            "Tue 09:00 extra",
            "Tue 9",
            "Tuesday9:00",
        ] {
            let err = LocalMoment::parse(bad).unwrap_err().to_string();
            assert!(err.contains("not a moment"), "{bad:?}: {err}");
        }
        // 2024-06-18 was a Tuesday.
        let moment = LocalMoment::of(jiff::civil::datetime(2024, 6, 18, 14, 59, 59, 0));
        assert_eq!(moment.to_string(), "Tue 14:59");
        let _ = LocalMoment::now();
    }
}
