//! Whether a stored response may answer a request now: freshness lifetime
//! (RFC 9111 §4.2; the current age is `age`), request directives (§5.2.1),
//! and what may be done with a stale response (§4.2.4, RFC 5861).

use std::time::{Duration, SystemTime};

use http::header::{self, HeaderMap};
use http::{StatusCode, request};

use super::directives::{Directives, directives, seconds};

/// Status codes a cache may give heuristic freshness (RFC 9110 §15.1).
const HEURISTICALLY_CACHEABLE: [u16; 12] =
    [200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501];

/// Whether RFC 9110 defines `status` as heuristically cacheable.
pub fn heuristically_cacheable(status: StatusCode) -> bool {
    HEURISTICALLY_CACHEABLE.contains(&status.as_u16())
}

/// How long a response stays fresh (RFC 9111 §4.2.1), as a shared cache:
/// `s-maxage`, else `max-age`, else `Expires` − `Date`, else a heuristic of
/// 10% of the time since `Last-Modified` (§4.2.2), capped at `heuristic_max`,
/// for heuristically cacheable status codes and responses marked `public`.
/// Invalid freshness information (a malformed or repeated value, an
/// unparsable `Expires`) makes the response stale. `Date` defaults to when the
/// response arrived. A response with `no-cache` is stale at once (§5.2.2.4).
pub fn freshness_lifetime(
    status: StatusCode,
    headers: &HeaderMap,
    response_time: SystemTime,
    heuristic_max: Duration,
) -> Duration {
    let cc = directives(headers);
    if cc.contains_key("no-cache") {
        return Duration::ZERO;
    }
    for name in ["s-maxage", "max-age"] {
        if cc.contains_key(name) {
            return seconds(&cc, name).map_or(Duration::ZERO, Duration::from_secs);
        }
    }
    let date = single_date(headers, &header::DATE).unwrap_or(response_time);
    if headers.contains_key(header::EXPIRES) {
        return single_date(headers, &header::EXPIRES)
            .and_then(|expires| expires.duration_since(date).ok())
            .unwrap_or(Duration::ZERO);
    }
    if !(heuristically_cacheable(status) || cc.contains_key("public")) {
        return Duration::ZERO;
    }
    single_date(headers, &header::LAST_MODIFIED)
        .and_then(|modified| date.duration_since(modified).ok())
        .map_or(Duration::ZERO, |since| {
            Duration::from_secs(since.as_secs() / 10).min(heuristic_max)
        })
}

/// A date field given exactly once, in any of the three HTTP date formats
/// (RFC 9110 §5.6.7).
fn single_date(headers: &HeaderMap, name: &header::HeaderName) -> Option<SystemTime> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    httpdate::parse_http_date(value.to_str().ok()?.trim()).ok()
}

/// What may be done with a stale response while (or instead of) revalidating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StaleRules {
    /// Serve it now and revalidate in the background (RFC 5861 §3).
    pub while_revalidate: bool,
    /// Serve it if revalidation fails with an error (RFC 5861 §4).
    pub if_error: bool,
    /// Serve it if the origin cannot be reached at all (§4.2.4: a
    /// disconnected cache may), unless the response forbids stale use.
    pub if_unreachable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Fresh,
    Stale(StaleRules),
}

/// A stored response as the rules see it at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Stored<'a> {
    pub status: StatusCode,
    pub headers: &'a HeaderMap,
    /// Request headers it varies on.
    pub vary: &'a [String],
    /// Freshness lifetime (§4.2.1).
    pub lifetime: Duration,
    /// Current age (§4.2.3).
    pub age: Duration,
}

/// Decides whether `stored` may answer `request` now (§4, §5.2.1). The
/// variant was already selected by the request's `Vary` headers.
pub fn evaluate(stored: &Stored<'_>, request: &request::Parts) -> Verdict {
    let (age, lifetime) = (stored.age, stored.lifetime);
    // The common case: no request directives, only the response's own
    // freshness matters.
    if !request.headers.contains_key(header::CACHE_CONTROL)
        && !request.headers.contains_key(header::PRAGMA)
    {
        return if age < lifetime {
            Verdict::Fresh
        } else {
            Verdict::Stale(stale_rules(stored.headers, request, age, lifetime))
        };
    }
    let req = directives(&request.headers);
    let stale = || Verdict::Stale(stale_rules(stored.headers, request, age, lifetime));
    if client_demands_validation(&req, request) {
        return stale();
    }
    if seconds(&req, "max-age").is_some_and(|max| age > Duration::from_secs(max)) {
        return stale();
    }
    if seconds(&req, "min-fresh")
        .is_some_and(|min| lifetime.saturating_sub(age) < Duration::from_secs(min))
    {
        return stale();
    }
    if age < lifetime {
        return Verdict::Fresh;
    }
    // §5.2.1.2: max-stale lets a client accept a stale response, unless the
    // response forbids serving it stale.
    let staleness = age - lifetime;
    let accepted = match req.get("max-stale") {
        None => false,
        Some(None) => true,
        Some(Some(_)) => {
            seconds(&req, "max-stale").is_some_and(|max| staleness <= Duration::from_secs(max))
        }
    };
    if accepted && !forbids_stale(&directives(stored.headers)) {
        Verdict::Fresh
    } else {
        stale()
    }
}

/// §4.2.4, §5.2.2: directives that forbid serving the response stale at all.
fn forbids_stale(response: &Directives) -> bool {
    [
        "must-revalidate",
        "proxy-revalidate",
        "s-maxage",
        "no-cache",
    ]
    .iter()
    .any(|d| response.contains_key(*d))
}

/// How stale a response may be and still be served when the origin cannot
/// be reached (a week, as Squid's `max_stale`).
pub const STALE_IF_UNREACHABLE_MAX: Duration = Duration::from_secs(7 * 24 * 3600);

fn client_demands_validation(req: &Directives, request: &request::Parts) -> bool {
    req.contains_key("no-cache")
        || (!request.headers.contains_key(header::CACHE_CONTROL)
            && pragma_no_cache(&request.headers))
}

fn stale_rules(
    stored: &HeaderMap,
    request: &request::Parts,
    age: Duration,
    lifetime: Duration,
) -> StaleRules {
    let res = directives(stored);
    if forbids_stale(&res) {
        return StaleRules::default();
    }
    let req = directives(&request.headers);
    let staleness = age.saturating_sub(lifetime).as_secs();
    let client_wants_fresh = client_demands_validation(&req, request)
        || req.contains_key("max-age")
        || req.contains_key("min-fresh");
    let swr = seconds(&res, "stale-while-revalidate");
    let sie = seconds(&res, "stale-if-error").max(seconds(&req, "stale-if-error"));
    StaleRules {
        while_revalidate: !client_wants_fresh
            && age >= lifetime
            && swr.is_some_and(|window| staleness < window),
        if_error: sie.is_some_and(|window| staleness < window),
        if_unreachable: !client_wants_fresh && staleness < STALE_IF_UNREACHABLE_MAX.as_secs(),
    }
}

fn pragma_no_cache(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::PRAGMA)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("no-cache"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::test_support::{DAY, eval, req, stored};

    fn verdict(headers: &[(&str, &str)], age: u64, request_headers: &[(&str, &str)]) -> Verdict {
        let (meta, now) = stored(headers, &req(&[]), age);
        eval(&meta, &req(request_headers), now, DAY)
    }

    #[test]
    fn freshness_precedence_s_maxage_then_max_age_then_expires() {
        let expires_past = httpdate::fmt_http_date(SystemTime::now() - DAY);
        let expires_future = httpdate::fmt_http_date(SystemTime::now() + DAY);
        type Case<'a> = (&'a [(&'a str, &'a str)], u64, bool);
        let cases: &[Case] = &[
            (&[("cache-control", "max-age=60")], 10, true),
            (&[("cache-control", "max-age=60")], 70, false),
            (&[("cache-control", "max-age=10, s-maxage=100")], 50, true),
            (&[("cache-control", "max-age=100, s-maxage=10")], 50, false),
            (
                &[("cache-control", "max-age=100"), ("expires", &expires_past)],
                50,
                true,
            ),
            (&[("expires", &expires_future)], 50, true),
            (&[("expires", &expires_past), ("etag", "\"x\"")], 0, false),
            (&[("expires", "0"), ("etag", "\"x\"")], 0, false),
        ];
        for (headers, age, fresh) in cases {
            let v = verdict(headers, *age, &[]);
            assert_eq!(
                v == Verdict::Fresh,
                *fresh,
                "{headers:?} at age {age}: {v:?}"
            );
        }
    }

    #[test]
    fn heuristic_freshness_is_ten_percent_of_last_modified_age_capped() {
        let ten_days = httpdate::fmt_http_date(SystemTime::now() - 10 * DAY);
        let h = [("last-modified", ten_days.as_str())];
        // 10% of 10 days = 1 day, capped to DAY in these tests.
        assert_eq!(verdict(&h, 3600, &[]), Verdict::Fresh);
        let (meta, now) = stored(&h, &req(&[]), 3600);
        assert!(
            matches!(
                eval(&meta, &req(&[]), now, Duration::from_secs(600)),
                Verdict::Stale(_)
            ),
            "the cap makes it stale after 10 minutes"
        );
        // Heuristics do not apply when freshness is explicit.
        let explicit = [
            ("last-modified", ten_days.as_str()),
            ("cache-control", "max-age=5"),
        ];
        assert!(matches!(verdict(&explicit, 3600, &[]), Verdict::Stale(_)));
    }

    #[test]
    fn request_directives() {
        let h = [("cache-control", "max-age=100")];
        assert_eq!(verdict(&h, 50, &[]), Verdict::Fresh);
        assert!(matches!(
            verdict(&h, 50, &[("cache-control", "no-cache")]),
            Verdict::Stale(_)
        ));
        assert!(matches!(
            verdict(&h, 50, &[("pragma", "no-cache")]),
            Verdict::Stale(_)
        ));
        assert!(matches!(
            verdict(&h, 50, &[("cache-control", "max-age=10")]),
            Verdict::Stale(_)
        ));
        assert_eq!(
            verdict(&h, 50, &[("cache-control", "max-age=60")]),
            Verdict::Fresh
        );
        assert!(matches!(
            verdict(&h, 50, &[("cache-control", "min-fresh=60")]),
            Verdict::Stale(_)
        ));
        assert_eq!(
            verdict(&h, 50, &[("cache-control", "min-fresh=40")]),
            Verdict::Fresh
        );
        assert_eq!(
            verdict(&h, 150, &[("cache-control", "max-stale=100")]),
            Verdict::Fresh
        );
        assert_eq!(
            verdict(&h, 150, &[("cache-control", "max-stale")]),
            Verdict::Fresh
        );
        assert!(matches!(
            verdict(&h, 150, &[("cache-control", "max-stale=10")]),
            Verdict::Stale(_)
        ));
        // must-revalidate forbids max-stale.
        let strict = [("cache-control", "max-age=100, must-revalidate")];
        assert!(matches!(
            verdict(&strict, 150, &[("cache-control", "max-stale")]),
            Verdict::Stale(_)
        ));
    }

    #[test]
    fn response_no_cache_always_revalidates() {
        let h = [
            ("cache-control", "no-cache, max-age=100"),
            ("etag", "\"a\""),
        ];
        assert!(matches!(verdict(&h, 1, &[]), Verdict::Stale(_)));
    }

    #[test]
    fn stale_while_revalidate_and_stale_if_error_windows() {
        let h = [(
            "cache-control",
            "max-age=10, stale-while-revalidate=60, stale-if-error=300",
        )];
        let rules = |age, rh: &[(&str, &str)]| match verdict(&h, age, rh) {
            Verdict::Stale(r) => r,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            rules(30, &[]),
            StaleRules {
                while_revalidate: true,
                if_error: true,
                if_unreachable: true,
            }
        );
        assert_eq!(
            rules(100, &[]),
            StaleRules {
                while_revalidate: false,
                if_error: true,
                if_unreachable: true,
            }
        );
        assert_eq!(
            rules(400, &[]),
            StaleRules {
                if_unreachable: true,
                ..StaleRules::default()
            }
        );
        // A client asking for validation does not get the stale copy now...
        assert!(!rules(30, &[("cache-control", "no-cache")]).while_revalidate);
        // ...and a client may allow stale-if-error itself.
        let plain = [("cache-control", "max-age=10")];
        match verdict(&plain, 30, &[("cache-control", "stale-if-error=60")]) {
            Verdict::Stale(r) => assert!(r.if_error),
            other => panic!("{other:?}"),
        }
        for forbid in ["must-revalidate", "proxy-revalidate", "s-maxage=10"] {
            let cc = format!("max-age=10, {forbid}, stale-while-revalidate=60, stale-if-error=300");
            assert_eq!(
                verdict(&[("cache-control", &cc)], 30, &[]),
                Verdict::Stale(StaleRules::default()),
                "{forbid}"
            );
        }
    }

    #[test]
    fn an_age_that_is_not_one_non_negative_integer_makes_the_response_stale() {
        let lifetime = [("cache-control", "max-age=3600"), ("etag", "\"e\"")];
        let with_age = |ages: &[&str]| {
            let mut h: Vec<(&str, &str)> = lifetime.to_vec();
            h.extend(ages.iter().map(|a| ("age", *a)));
            verdict(&h, 1, &[])
        };
        assert_eq!(with_age(&[]), Verdict::Fresh);
        assert_eq!(with_age(&["10"]), Verdict::Fresh);
        assert_eq!(with_age(&[" 10 "]), Verdict::Fresh);
        for bad in [
            &["abc"][..],
            &["-7200"],
            &["7200.0"],
            &["7200,0"],
            &["0,7200"],
            &["0, 0"],
            &["7200;foo=bar"],
            &["7200;foo=111"],
            &["0", "0"],
            &["0", "7200"],
            &[""],
        ] {
            assert!(matches!(with_age(bad), Verdict::Stale(_)), "Age {bad:?}");
        }
        // A huge Age is old, not an overflow.
        assert!(matches!(
            with_age(&["99999999999999999999999"]),
            Verdict::Stale(_)
        ));
    }

    #[test]
    fn directive_names_are_case_insensitive() {
        assert_eq!(
            verdict(&[("cache-control", "MaX-aGe=3600")], 10, &[]),
            Verdict::Fresh
        );
        assert!(matches!(
            verdict(
                &[
                    ("cache-control", "max-age=10000, No-CaChE"),
                    ("etag", "\"e\"")
                ],
                1,
                &[]
            ),
            Verdict::Stale(_)
        ));
        assert!(matches!(
            verdict(
                &[("cache-control", "max-age=100")],
                50,
                &[("cache-control", "No-Cache")]
            ),
            Verdict::Stale(_)
        ));
        assert!(matches!(
            verdict(
                &[("cache-control", "max-age=100")],
                50,
                &[("cache-control", "MAX-AGE=10")]
            ),
            Verdict::Stale(_)
        ));
    }

    #[test]
    fn invalid_or_conflicting_freshness_is_stale() {
        for cc in [
            "max-age=abc",
            "max-age=-5",
            "max-age=",
            "max-age=10, max-age=3600",
        ] {
            assert!(
                matches!(
                    verdict(&[("cache-control", cc), ("etag", "\"e\"")], 1, &[]),
                    Verdict::Stale(_)
                ),
                "{cc}"
            );
        }
        // The same value twice is not a conflict.
        assert_eq!(
            verdict(&[("cache-control", "max-age=3600, max-age=3600")], 1, &[]),
            Verdict::Fresh
        );
        // Two Expires fields.
        let future = httpdate::fmt_http_date(SystemTime::now() + DAY);
        assert!(matches!(
            verdict(
                &[
                    ("expires", &future),
                    ("expires", &future),
                    ("etag", "\"e\"")
                ],
                1,
                &[]
            ),
            Verdict::Stale(_)
        ));
    }

    #[test]
    fn expires_and_last_modified_in_all_three_date_formats() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // 1994-11-06 08:49:37
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        for expires in [
            "Sun, 06 Nov 1994 09:49:37 GMT",
            "Sunday, 06-Nov-94 09:49:37 GMT",
            "Sun Nov  6 09:49:37 1994",
        ] {
            let h = headers(&[("date", date), ("expires", expires)]);
            assert_eq!(
                freshness_lifetime(StatusCode::OK, &h, t, DAY),
                Duration::from_secs(3600),
                "{expires}"
            );
        }
        let h = headers(&[("date", date), ("expires", "0")]);
        assert_eq!(
            freshness_lifetime(StatusCode::OK, &h, t, DAY),
            Duration::ZERO
        );
    }

    #[test]
    fn any_status_with_explicit_freshness_is_fresh_and_heuristics_need_a_cacheable_status_or_public()
     {
        let now = SystemTime::now();
        let ten_days_ago = httpdate::fmt_http_date(now - 10 * DAY);
        let lifetime = |status: u16, h: &[(&str, &str)]| {
            freshness_lifetime(
                StatusCode::from_u16(status).unwrap(),
                &headers(h),
                now,
                30 * DAY,
            )
        };
        for status in [200, 204, 400, 404, 500, 502, 503, 504, 599] {
            assert_eq!(
                lifetime(status, &[("cache-control", "max-age=60")]),
                Duration::from_secs(60)
            );
        }
        let lm = ("last-modified", ten_days_ago.as_str());
        assert_eq!(lifetime(200, &[lm]), DAY);
        assert_eq!(lifetime(204, &[lm]), DAY);
        assert_eq!(lifetime(599, &[lm]), Duration::ZERO);
        assert_eq!(lifetime(500, &[lm]), Duration::ZERO);
        assert_eq!(lifetime(599, &[lm, ("cache-control", "public")]), DAY);
        // proxy-revalidate does not shorten freshness; it only forbids stale use.
        assert_eq!(
            lifetime(200, &[("cache-control", "max-age=60, proxy-revalidate")]),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn an_unreachable_origin_may_get_a_stale_copy_unless_the_response_forbids_it() {
        let stale_rules = |cc: &str, request: &[(&str, &str)]| match verdict(
            &[("cache-control", cc), ("etag", "\"e\"")],
            100,
            request,
        ) {
            Verdict::Stale(rules) => rules,
            other => panic!("{other:?}"),
        };
        assert!(stale_rules("max-age=10", &[]).if_unreachable);
        for forbid in [
            "must-revalidate",
            "proxy-revalidate",
            "no-cache",
            "s-maxage=10",
        ] {
            assert!(
                !stale_rules(&format!("max-age=10, {forbid}"), &[]).if_unreachable,
                "{forbid}"
            );
        }
        assert!(!stale_rules("max-age=10", &[("cache-control", "no-cache")]).if_unreachable);
        // Not forever: a week at most.
        let weeks = 2 * STALE_IF_UNREACHABLE_MAX.as_secs();
        match verdict(&[("cache-control", "max-age=10")], weeks, &[]) {
            Verdict::Stale(rules) => assert!(!rules.if_unreachable),
            other => panic!("{other:?}"),
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }
}
