//! RFC 9110 §13/§14 answers from a stored response: the client's own
//! conditional (304) and single byte range (206/416) requests, and HEAD; and
//! where a stored partial response (206) sits in the whole representation.
//! Whether the stored response may be used at all (RFC 9111) is `crate::policy`.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode, request, response};

use crate::policy::freshness::Stored;

/// Which part of the stored body a hit sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyPlan {
    None,
    Full,
    /// Inclusive byte range.
    Range(u64, u64),
}

/// Builds the response a stored object gives to `request`: `Age` set
/// (RFC 9111 §5.1), a 304 for a matching client conditional, 206/416 for a
/// single byte range of a 200, no body for HEAD.
pub fn hit_response(
    stored: &Stored<'_>,
    request: &request::Parts,
    body_len: u64,
) -> (response::Parts, BodyPlan) {
    // Sized for the few headers the proxy adds (Age, Via, Cache-Status,
    // X-Cache): hyper keeps a response's header map allocated on each
    // keep-alive connection, so a map that grew twice its size stays twice
    // its size on every idle connection.
    let mut headers = HeaderMap::with_capacity(stored.headers.len() + 4);
    for (name, value) in stored.headers {
        headers.append(name.clone(), value.clone());
    }
    headers.insert(header::AGE, HeaderValue::from(stored.age.as_secs()));
    headers.remove(header::TRANSFER_ENCODING);
    let head = request.method == Method::HEAD;
    let mut status = stored.status;
    let mut plan = if head { BodyPlan::None } else { BodyPlan::Full };
    // A stored part is served only as the sub-range asked for (the lookup
    // made sure it holds it); its offsets are those of the whole.
    let part = (status == StatusCode::PARTIAL_CONTENT)
        .then(|| stored_part(stored.headers))
        .flatten();
    let (offset, complete_length) = part.map_or((0, body_len), |p| (p.first, p.complete_length));

    if client_not_modified(&request.headers, &headers) {
        status = StatusCode::NOT_MODIFIED;
        plan = BodyPlan::None;
        headers.remove(header::CONTENT_LENGTH);
        headers.remove(header::CONTENT_TYPE);
    } else if (status == StatusCode::OK || part.is_some())
        && !head
        && range_applies(&request.headers, &headers)
    {
        let held = |start: u64, end: u64| start >= offset && end - offset < body_len;
        match request
            .headers
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .map(|r| parse_range(r, complete_length))
        {
            Some(RangeSpec::Satisfiable(start, end)) if held(start, end) => {
                status = StatusCode::PARTIAL_CONTENT;
                plan = BodyPlan::Range(start - offset, end - offset);
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start + 1));
                if let Ok(v) =
                    HeaderValue::from_str(&format!("bytes {start}-{end}/{complete_length}"))
                {
                    headers.insert(header::CONTENT_RANGE, v);
                }
            }
            Some(RangeSpec::Satisfiable(..) | RangeSpec::Unsatisfiable) => {
                status = StatusCode::RANGE_NOT_SATISFIABLE;
                plan = BodyPlan::None;
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(0u64));
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{complete_length}")) {
                    headers.insert(header::CONTENT_RANGE, v);
                }
            }
            Some(RangeSpec::Ignore) | None => {
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body_len));
            }
        }
    } else if status != StatusCode::NO_CONTENT && status != StatusCode::NOT_MODIFIED {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body_len));
    }
    let mut parts = http::Response::new(()).into_parts().0;
    parts.status = status;
    parts.headers = headers;
    (parts, plan)
}

/// RFC 9110 §13.2.2: If-None-Match (weak comparison) takes precedence over
/// If-Modified-Since.
fn client_not_modified(request: &HeaderMap, stored: &HeaderMap) -> bool {
    let inm: Vec<&str> = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    if !inm.is_empty() {
        let Some(etag) = stored.get(header::ETAG).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let weak = |t: &str| t.trim().trim_start_matches("W/").to_string();
        return inm.iter().any(|t| *t == "*" || weak(t) == weak(etag));
    }
    let since = request
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v.trim()).ok());
    // RFC 9111 §4.3.2: without a Last-Modified, the stored response's Date
    // stands for it (the representation existed, unchanged, by then).
    let date = |name| {
        stored
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v.trim()).ok())
    };
    let modified = date(header::LAST_MODIFIED).or_else(|| date(header::DATE));
    matches!((since, modified), (Some(since), Some(modified)) if modified <= since)
}

/// Where a stored 206's bytes sit in the whole representation (RFC 9110
/// §14.4), all inclusive offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredPart {
    pub first: u64,
    pub last: u64,
    pub complete_length: u64,
}

/// The part a 206 holds, if it can be stored and served again: one
/// `Content-Range: bytes FIRST-LAST/LENGTH` with a known complete length,
/// in bounds, and agreeing with `Content-Length` when there is one (the body
/// is then checked against it as it is stored). Anything else (several
/// ranges, `*` lengths, a range whose size is not the body's) is not kept:
/// serving it again would hand other clients bytes at the wrong offsets.
pub fn stored_part(headers: &HeaderMap) -> Option<StoredPart> {
    let mut values = headers.get_all(header::CONTENT_RANGE).iter();
    let value = values.next()?.to_str().ok()?;
    if values.next().is_some() {
        return None;
    }
    let (unit, rest) = value.trim().split_once(' ')?;
    if !unit.eq_ignore_ascii_case("bytes") {
        return None;
    }
    let (range, length) = rest.trim().split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let number = |t: &str| {
        let t = t.trim();
        (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse::<u64>().ok())
            .flatten()
    };
    let part = StoredPart {
        first: number(first)?,
        last: number(last)?,
        complete_length: number(length)?,
    };
    if part.first > part.last || part.last >= part.complete_length {
        return None;
    }
    let size = part.last - part.first + 1;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .map(|v| v.to_str().ok().and_then(|t| t.trim().parse::<u64>().ok()));
    match declared {
        Some(Some(len)) if len != size => None,
        Some(None) => None,
        _ => Some(part),
    }
}

/// Whether a stored part can answer `request` (RFC 9111 §3.3): a GET for one
/// byte range that applies (no If-Range, or a matching one) and lies wholly
/// inside the part.
pub fn part_answers(part: &StoredPart, request: &request::Parts, stored: &HeaderMap) -> bool {
    if request.method != Method::GET || !range_applies(&request.headers, stored) {
        return false;
    }
    let asked = request
        .headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|r| parse_range(r, part.complete_length));
    matches!(asked, Some(RangeSpec::Satisfiable(start, end)) if start >= part.first && end <= part.last)
}

/// RFC 9110 §13.1.5: a Range with If-Range applies only if the validator
/// still matches (strong comparison for entity tags, exact date otherwise).
pub fn range_applies(request: &HeaderMap, stored: &HeaderMap) -> bool {
    if !request.contains_key(header::RANGE) {
        return false;
    }
    let Some(if_range) = request.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let if_range = if_range.trim();
    if if_range.starts_with('"') {
        stored
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|etag| etag == if_range)
    } else {
        stored
            .get(header::LAST_MODIFIED)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|lm| lm == if_range)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeSpec {
    /// Not a single byte range we serve: send the whole response (allowed by
    /// RFC 9110 §14.2).
    Ignore,
    Satisfiable(u64, u64),
    Unsatisfiable,
}

pub fn parse_range(value: &str, len: u64) -> RangeSpec {
    let Some(spec) = value
        .trim()
        .strip_prefix("bytes=")
        .or_else(|| value.trim().strip_prefix("BYTES="))
    else {
        return RangeSpec::Ignore;
    };
    if spec.contains(',') {
        return RangeSpec::Ignore;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeSpec::Ignore;
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        let Ok(suffix) = last.parse::<u64>() else {
            return RangeSpec::Ignore;
        };
        if suffix == 0 || len == 0 {
            return RangeSpec::Unsatisfiable;
        }
        return RangeSpec::Satisfiable(len.saturating_sub(suffix), len - 1);
    }
    let Ok(start) = first.parse::<u64>() else {
        return RangeSpec::Ignore;
    };
    let end = if last.is_empty() {
        u64::MAX
    } else {
        match last.parse::<u64>() {
            Ok(end) if end >= start => end,
            _ => return RangeSpec::Ignore,
        }
    };
    if start >= len {
        return RangeSpec::Unsatisfiable;
    }
    RangeSpec::Satisfiable(start, end.min(len - 1))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::meta::Meta;
    use crate::policy::test_support::{DAY, eval, key, req, stored};
    use crate::policy::{Verdict, canonical_request};

    fn hit(
        meta: &Meta,
        request: &request::Parts,
        now: SystemTime,
        len: u64,
    ) -> (response::Parts, BodyPlan) {
        let headers = meta.header_map();
        let stored = Stored {
            status: meta.status(),
            headers: &headers,
            vary: &meta.vary,
            lifetime: Duration::ZERO,
            age: crate::policy::current_age(
                crate::policy::age_header(&headers),
                meta.response_time(),
                now,
            ),
        };
        hit_response(&stored, request, len)
    }

    #[test]
    fn head_is_answered_from_a_stored_get() {
        let (meta, now) = stored(&[("cache-control", "max-age=60")], &req(&[]), 1);
        let mut head = http::Request::builder()
            .method("HEAD")
            .uri("http://a.test/x")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        head = {
            let mut c = canonical_request(&head, &key());
            c.method = Method::GET;
            c
        };
        assert_eq!(eval(&meta, &head, now, DAY), Verdict::Fresh);
        let mut raw_head = req(&[]);
        raw_head.method = Method::HEAD;
        let (parts, plan) = hit(&meta, &raw_head, now, 42);
        assert_eq!(parts.status, 200);
        assert_eq!(plan, BodyPlan::None);
        assert_eq!(parts.headers["content-length"], "42");
    }

    #[test]
    fn hits_carry_age_and_keep_the_origin_date() {
        let date = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(30));
        let (meta, now) = stored(
            &[("cache-control", "max-age=600"), ("date", &date)],
            &req(&[]),
            30,
        );
        let (parts, plan) = hit(&meta, &req(&[]), now, 10);
        assert_eq!(plan, BodyPlan::Full);
        assert_eq!(parts.headers["date"], date.as_str());
        let age: u64 = parts.headers["age"].to_str().unwrap().parse().unwrap();
        assert!((30..=31).contains(&age), "{age}");
    }

    #[test]
    fn client_conditionals_get_304() {
        let lm = httpdate::fmt_http_date(SystemTime::now() - DAY);
        let later = httpdate::fmt_http_date(SystemTime::now());
        let h = [
            ("cache-control", "max-age=600"),
            ("etag", "W/\"v1\""),
            ("last-modified", lm.as_str()),
        ];
        let (meta, now) = stored(&h, &req(&[]), 1);
        let status = |rh: &[(&str, &str)]| hit(&meta, &req(rh), now, 10).0.status.as_u16();
        assert_eq!(
            status(&[("if-none-match", "\"v1\"")]),
            304,
            "weak comparison"
        );
        assert_eq!(status(&[("if-none-match", "\"v0\", W/\"v1\"")]), 304);
        assert_eq!(status(&[("if-none-match", "*")]), 304);
        assert_eq!(status(&[("if-none-match", "\"v2\"")]), 200);
        assert_eq!(status(&[("if-modified-since", later.as_str())]), 304);
        assert_eq!(
            status(&[("if-modified-since", "Sat, 01 Jan 2000 00:00:00 GMT")]),
            200
        );
        // If-None-Match wins over If-Modified-Since.
        assert_eq!(
            status(&[
                ("if-none-match", "\"v2\""),
                ("if-modified-since", later.as_str())
            ]),
            200
        );
        // If-Modified-Since in the two obsolete date formats too.
        let t = SystemTime::now() + DAY;
        let rfc850 = httpdate::fmt_http_date(t);
        let (weekday, rest) = rfc850.split_once(", ").unwrap();
        let long_day = match weekday {
            "Mon" => "Monday",
            "Tue" => "Tuesday",
            "Wed" => "Wednesday",
            "Thu" => "Thursday",
            "Fri" => "Friday",
            "Sat" => "Saturday",
            _ => "Sunday",
        };
        // "06 Nov 2026 08:49:37 GMT" -> "06-Nov-26 08:49:37 GMT"
        let parts: Vec<&str> = rest.split(' ').collect();
        let rfc850 = format!(
            "{long_day}, {}-{}-{} {} GMT",
            parts[0],
            parts[1],
            &parts[2][2..],
            parts[3]
        );
        assert_eq!(
            status(&[("if-modified-since", rfc850.as_str())]),
            304,
            "{rfc850}"
        );
        let asctime = format!(
            "{weekday} {} {:>2} {} {}",
            parts[1],
            parts[0].trim_start_matches('0'),
            parts[3],
            parts[2]
        );
        assert_eq!(
            status(&[("if-modified-since", asctime.as_str())]),
            304,
            "{asctime}"
        );
    }

    #[test]
    fn if_modified_since_without_last_modified_compares_with_date() {
        let date = httpdate::fmt_http_date(SystemTime::now() - DAY);
        let h = [("cache-control", "max-age=600"), ("date", date.as_str())];
        let (meta, now) = stored(&h, &req(&[]), 1);
        let status = |rh: &[(&str, &str)]| hit(&meta, &req(rh), now, 10).0.status.as_u16();
        let later = httpdate::fmt_http_date(SystemTime::now());
        assert_eq!(status(&[("if-modified-since", later.as_str())]), 304);
        let earlier = httpdate::fmt_http_date(SystemTime::now() - 2 * DAY);
        assert_eq!(status(&[("if-modified-since", earlier.as_str())]), 200);
    }

    #[test]
    fn a_304_from_the_cache_carries_the_etag_and_strong_lists_match_any_member() {
        let h = [("cache-control", "max-age=600"), ("etag", "\"abcdef\"")];
        let (meta, now) = stored(&h, &req(&[]), 1);
        for inm in [
            "\"abcdef\", \"1234\", \"5678\"",
            "\"1234\", \"abcdef\", \"5678\"",
            "\"1234\", \"5678\", \"abcdef\"",
        ] {
            let (parts, _) = hit(&meta, &req(&[("if-none-match", inm)]), now, 10);
            assert_eq!(parts.status.as_u16(), 304, "{inm}");
            assert_eq!(parts.headers["etag"], "\"abcdef\"");
        }
    }

    #[test]
    fn ranges() {
        let cases = [
            ("bytes=0-9", RangeSpec::Satisfiable(0, 9)),
            ("bytes=10-", RangeSpec::Satisfiable(10, 99)),
            ("bytes=-10", RangeSpec::Satisfiable(90, 99)),
            ("bytes=-500", RangeSpec::Satisfiable(0, 99)),
            ("bytes=90-500", RangeSpec::Satisfiable(90, 99)),
            ("bytes=100-", RangeSpec::Unsatisfiable),
            ("bytes=-0", RangeSpec::Unsatisfiable),
            ("bytes=5-1", RangeSpec::Ignore),
            ("bytes=0-1,5-6", RangeSpec::Ignore),
            ("items=0-1", RangeSpec::Ignore),
            ("bytes=x-1", RangeSpec::Ignore),
        ];
        for (value, want) in cases {
            assert_eq!(parse_range(value, 100), want, "{value}");
        }
        let (meta, now) = stored(
            &[("cache-control", "max-age=600"), ("etag", "\"e\"")],
            &req(&[]),
            1,
        );
        let (parts, plan) = hit(&meta, &req(&[("range", "bytes=10-19")]), now, 100);
        assert_eq!(
            (parts.status.as_u16(), plan),
            (206, BodyPlan::Range(10, 19))
        );
        assert_eq!(parts.headers["content-range"], "bytes 10-19/100");
        assert_eq!(parts.headers["content-length"], "10");
        let (parts, _) = hit(&meta, &req(&[("range", "bytes=200-")]), now, 100);
        assert_eq!(parts.status.as_u16(), 416);
        assert_eq!(parts.headers["content-range"], "bytes */100");
        let (parts, plan) = hit(
            &meta,
            &req(&[("range", "bytes=0-1"), ("if-range", "\"old\"")]),
            now,
            100,
        );
        assert_eq!(
            (parts.status.as_u16(), plan),
            (200, BodyPlan::Full),
            "If-Range mismatch sends all"
        );
        let (parts, _) = hit(
            &meta,
            &req(&[("range", "bytes=0-1"), ("if-range", "\"e\"")]),
            now,
            100,
        );
        assert_eq!(parts.status.as_u16(), 206);
    }

    #[test]
    fn a_stored_part_is_where_its_content_range_says() {
        let part = |range: &str, len: Option<&str>| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_RANGE, HeaderValue::from_str(range).unwrap());
            if let Some(len) = len {
                h.insert(header::CONTENT_LENGTH, HeaderValue::from_str(len).unwrap());
            }
            stored_part(&h)
        };
        let want = |first, last, complete_length| {
            Some(StoredPart {
                first,
                last,
                complete_length,
            })
        };
        assert_eq!(part("bytes 4-9/10", Some("6")), want(4, 9, 10));
        assert_eq!(part("bytes 0-0/1", None), want(0, 0, 1));
        assert_eq!(part("Bytes 4-9/10", None), want(4, 9, 10));
        for (range, len) in [
            ("bytes 4-9/10", Some("5")),
            ("bytes 4-9/10", Some("six")),
            ("bytes 4-9/*", None),
            ("bytes */10", None),
            ("bytes 9-4/10", None),
            ("bytes 4-10/10", None),
            ("bytes -4-9/10", None),
            ("bytes 4-9/1+0", None),
            ("items 4-9/10", None),
            ("bytes 4-9", None),
        ] {
            assert_eq!(part(range, len), None, "{range} {len:?}");
        }
    }

    #[test]
    fn a_stored_part_answers_ranges_inside_it_at_the_whole_offsets() {
        let h = [
            ("cache-control", "max-age=600"),
            ("etag", "\"e\""),
            ("content-range", "bytes 80-99/100"),
            ("content-length", "20"),
        ];
        let (mut meta, now) = stored(&h, &req(&[]), 1);
        meta.status = 206;
        let headers = meta.header_map();
        let part = stored_part(&headers).unwrap();
        let answers = |range: Option<&str>| {
            let r = range.map(|r| vec![("range", r)]).unwrap_or_default();
            part_answers(&part, &req(&r), &headers)
        };
        assert!(answers(Some("bytes=80-99")));
        assert!(answers(Some("bytes=85-90")));
        assert!(answers(Some("bytes=90-")), "open-ended");
        assert!(answers(Some("bytes=-10")), "suffix");
        assert!(!answers(Some("bytes=70-90")), "starts before the part");
        assert!(!answers(Some("bytes=-30")), "suffix longer than the part");
        assert!(!answers(Some("bytes=0-1,85-90")), "several ranges");
        assert!(!answers(None), "the whole was asked for");
        let if_range = [("range", "bytes=85-90"), ("if-range", "\"other\"")];
        assert!(!part_answers(&part, &req(&if_range), &headers));

        let (parts, plan) = hit(&meta, &req(&[("range", "bytes=85-90")]), now, 20);
        assert_eq!((parts.status.as_u16(), plan), (206, BodyPlan::Range(5, 10)));
        assert_eq!(parts.headers["content-range"], "bytes 85-90/100");
        assert_eq!(parts.headers["content-length"], "6");
        let (parts, plan) = hit(&meta, &req(&[("range", "bytes=-5")]), now, 20);
        assert_eq!(
            (parts.status.as_u16(), plan),
            (206, BodyPlan::Range(15, 19))
        );
        assert_eq!(parts.headers["content-range"], "bytes 95-99/100");
    }
}
