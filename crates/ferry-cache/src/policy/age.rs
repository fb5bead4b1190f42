//! A response's `Age` (RFC 9111 §5.1, §4.2.3): the bound on it, reading it
//! from the header, the current age of a stored response, and the bounded
//! copy that is stored or passed on. Below both freshness and storability,
//! which each need it.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use http::header::{self, HeaderMap, HeaderValue};
use http::response;

/// The current age of a response received at `response_time` carrying an
/// `Age` of `age_header` (§4.2.3).
pub fn current_age(age_header: Duration, response_time: SystemTime, now: SystemTime) -> Duration {
    // Saturating: an `Age` of u64::MAX seconds is "very old", not a crash.
    age_header.saturating_add(now.duration_since(response_time).unwrap_or_default())
}

/// The largest `Age` kept: RFC 9111 §5.1 has a cache treat a larger value
/// (or one that overflows) as 2^31 seconds.
pub const MAX_AGE_SECS: u64 = 1 << 31;

/// The `Age` a response arrived with (at most [`MAX_AGE_SECS`]). `Age` is a
/// single non-negative integer (§5.1); anything else (text, a sign, a
/// fraction, parameters, a list, several fields) says nothing trustworthy
/// about the response's age, so it is taken as the largest age: the response
/// is stale and is revalidated before use.
pub fn age_header(headers: &HeaderMap) -> Duration {
    let mut values = headers.get_all(header::AGE).iter();
    let Some(first) = values.next() else {
        return Duration::ZERO;
    };
    let text = std::str::from_utf8(first.as_bytes()).unwrap_or("").trim();
    let valid =
        values.next().is_none() && !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let secs = if valid {
        text.parse::<u64>().unwrap_or(u64::MAX).min(MAX_AGE_SECS)
    } else {
        MAX_AGE_SECS
    };
    Duration::from_secs(secs)
}

/// `response` with an `Age` beyond [`MAX_AGE_SECS`] written as that bound
/// (RFC 9111 §5.1), copied only when needed, so a 20-digit `Age` is never
/// stored or passed on.
pub fn with_bounded_age(response: &response::Parts) -> Cow<'_, response::Parts> {
    let too_big = response
        .headers
        .get_all(header::AGE)
        .iter()
        .any(|v| v.len() > 10 || age_header_value(v) > MAX_AGE_SECS);
    if !too_big {
        return Cow::Borrowed(response);
    }
    let mut bounded = http::Response::new(()).into_parts().0;
    bounded.status = response.status;
    bounded.version = response.version;
    bounded.headers = response.headers.clone();
    bounded.headers.remove(header::AGE);
    bounded
        .headers
        .insert(header::AGE, HeaderValue::from(MAX_AGE_SECS));
    Cow::Owned(bounded)
}

fn age_header_value(v: &HeaderValue) -> u64 {
    std::str::from_utf8(v.as_bytes())
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}
