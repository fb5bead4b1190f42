//! The local time as groups read it on every request: the day of the week,
//! the minute of the day and the date, in the machine's time zone. jiff's
//! `Zoned::now()` looks up the system time zone each time (its `TZ`
//! variable and its cached rules: about a microsecond), which every request
//! of a group with a schedule or a quota would pay, once for the schedule
//! and once, under the quota book's lock, for the day. The local minute
//! changes once a minute, so it is worked out once a minute and kept in one
//! atomic word.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use jiff::civil::{Date, DateTime, Weekday};

/// The local time, to the minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalMinute {
    pub date: Date,
    pub weekday: Weekday,
    /// 0 (00:00) to 1439 (23:59).
    pub minute_of_day: u16,
}

/// `unix minute << 32 | year << 16 | month << 8 | day`, with the weekday
/// and minute of day worked out again from the date and the low bits; 0:
/// nothing worked out yet.
static CACHED: AtomicU64 = AtomicU64::new(0);
static CACHED_MINUTE_OF_DAY: AtomicU64 = AtomicU64::new(0);

/// The local time now.
pub fn now() -> LocalMinute {
    let unix_minute = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 60);
    let cached = CACHED.load(Ordering::Acquire);
    if cached != 0 && cached >> 32 == unix_minute {
        let minute_of_day = CACHED_MINUTE_OF_DAY.load(Ordering::Acquire);
        if minute_of_day >> 32 == unix_minute {
            if let Some(local) = unpack(cached, minute_of_day) {
                return local;
            }
        }
    }
    let local = of(jiff::Zoned::now().datetime());
    let (date_word, minute_word) = pack(unix_minute, local);
    CACHED_MINUTE_OF_DAY.store(minute_word, Ordering::Release);
    CACHED.store(date_word, Ordering::Release);
    local
}

/// The minute a local date and time falls in.
pub fn of(at: DateTime) -> LocalMinute {
    // hour() is 0..=23 and minute() 0..=59, never negative.
    let minute = i32::from(at.hour()) * 60 + i32::from(at.minute());
    LocalMinute {
        date: at.date(),
        weekday: at.weekday(),
        minute_of_day: u16::try_from(minute).unwrap_or(0),
    }
}

fn pack(unix_minute: u64, local: LocalMinute) -> (u64, u64) {
    let year = u64::try_from(local.date.year()).unwrap_or(0) & 0xffff;
    let month = u64::try_from(local.date.month()).unwrap_or(0);
    let day = u64::try_from(local.date.day()).unwrap_or(0);
    (
        unix_minute << 32 | year << 16 | month << 8 | day,
        unix_minute << 32 | u64::from(local.minute_of_day),
    )
}

fn unpack(date_word: u64, minute_word: u64) -> Option<LocalMinute> {
    let year = i16::try_from((date_word >> 16) & 0xffff).ok()?;
    let month = i8::try_from((date_word >> 8) & 0xff).ok()?;
    let day = i8::try_from(date_word & 0xff).ok()?;
    let date = Date::new(year, month, day).ok()?;
    Some(LocalMinute {
        date,
        weekday: date.weekday(),
        minute_of_day: u16::try_from(minute_word & 0xffff).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cached_minute_is_the_clock_s() {
        let first = now();
        let again = now();
        let fresh = of(jiff::Zoned::now().datetime());
        // The minute may turn between the calls; then the later ones agree.
        assert!(
            first == again || again == fresh,
            "{first:?} {again:?} {fresh:?}"
        );
        assert_eq!(again.date, fresh.date);
        assert_eq!(again.weekday, fresh.date.weekday());
    }

    #[test]
    fn packing_keeps_every_field() {
        let local = of(jiff::civil::date(2026, 12, 31).at(23, 59, 0, 0));
        let (d, m) = pack(29_000_000, local);
        assert_eq!(unpack(d, m), Some(local));
        assert_eq!(local.weekday, Weekday::Thursday);
        assert_eq!(local.minute_of_day, 1439);
    }
}
