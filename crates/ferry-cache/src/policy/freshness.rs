//! Whether a stored response may answer a request now: freshness lifetime and
//! current age (RFC 9111 §4.2), request directives (§5.2.1), and what may be
//! done with a stale response (§4.2.4, RFC 5861).

use std::time::{Duration, SystemTime};

use http::header::{self, HeaderMap};
use http::{StatusCode, request};
use http_cache_semantics::{BeforeRequest, CachePolicy};

use super::{canonical_request, directives, options, seconds, stored_request};
use crate::key::CacheKey;
use crate::meta::Meta;

/// How long a stored response stays fresh (RFC 9111 §4.2.1), with heuristic
/// freshness capped at `heuristic_max` (§4.2.2 leaves the limit to the cache).
pub fn freshness_lifetime(
    meta: &Meta,
    policy: &CachePolicy,
    headers: &HeaderMap,
    heuristic_max: Duration,
) -> Duration {
    let at_arrival = meta.response_time();
    let lifetime = policy
        .time_to_live(at_arrival)
        .saturating_add(policy.age(at_arrival));
    let cc = directives(headers);
    let heuristic = !cc.contains_key("max-age")
        && !cc.contains_key("s-maxage")
        && !headers.contains_key(header::EXPIRES)
        && headers.contains_key(header::LAST_MODIFIED);
    if heuristic {
        lifetime.min(heuristic_max)
    } else {
        lifetime
    }
}

/// What may be done with a stale response while (or instead of) revalidating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StaleRules {
    /// Serve it now and revalidate in the background (RFC 5861 §3).
    pub while_revalidate: bool,
    /// Serve it if revalidation fails with an error (RFC 5861 §4).
    pub if_error: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Fresh,
    Stale(StaleRules),
    /// The stored response does not match the request (e.g. a `Vary` header
    /// differs); it cannot be used at all.
    Mismatch,
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

/// The current age of a response received at `response_time` carrying an
/// `Age` of `age_header` (§4.2.3, as http-cache-semantics computes it).
pub fn current_age(age_header: Duration, response_time: SystemTime, now: SystemTime) -> Duration {
    // Saturating: an `Age` of u64::MAX seconds is "very old", not a crash.
    age_header.saturating_add(now.duration_since(response_time).unwrap_or_default())
}

/// The largest `Age` kept: RFC 9111 §5.1 has a cache treat a larger value
/// (or one that overflows) as 2^31 seconds.
pub const MAX_AGE_SECS: u64 = 1 << 31;

/// The `Age` a response arrived with (at most [`MAX_AGE_SECS`]).
pub fn age_header(headers: &HeaderMap) -> Duration {
    let text = headers
        .get(header::AGE)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or("");
    let secs = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse::<u64>().unwrap_or(u64::MAX).min(MAX_AGE_SECS)
    } else {
        0
    };
    Duration::from_secs(secs)
}

/// Decides whether `stored` may answer `request` (canonical) at `now`.
/// `policy` gives the full RFC 9111 policy; it is only asked for when the
/// request carries directives or the response varies.
pub fn evaluate<P: std::ops::Deref<Target = CachePolicy>>(
    stored: &Stored<'_>,
    policy: impl FnOnce() -> Option<P>,
    request: &request::Parts,
    now: SystemTime,
) -> Verdict {
    let (age, lifetime) = (stored.age, stored.lifetime);
    // Without request directives or Vary, only the stored response's own
    // freshness matters (URI and host already match through the key): the
    // common case, decided without the crate's full evaluation.
    if stored.vary.is_empty()
        && !request.headers.contains_key(header::CACHE_CONTROL)
        && !request.headers.contains_key(header::PRAGMA)
    {
        return if age < lifetime {
            Verdict::Fresh
        } else {
            Verdict::Stale(stale_rules(stored.headers, request, age, lifetime))
        };
    }
    let Some(policy) = policy() else {
        return Verdict::Mismatch;
    };
    match policy.before_request(request, now) {
        BeforeRequest::Fresh(_) if age < lifetime || allows_stale(request) => Verdict::Fresh,
        BeforeRequest::Fresh(_) => {
            Verdict::Stale(stale_rules(stored.headers, request, age, lifetime))
        }
        BeforeRequest::Stale { matches: false, .. } => Verdict::Mismatch,
        BeforeRequest::Stale { matches: true, .. } => {
            Verdict::Stale(stale_rules(stored.headers, request, age, lifetime))
        }
    }
}

/// The policy of a stored response that does not vary, rebuilt from what is
/// kept in memory (its request was only the URI and host).
pub fn rebuild_policy(
    key: &CacheKey,
    stored: &Stored<'_>,
    response_time: SystemTime,
) -> CachePolicy {
    let mut request = http::Request::new(()).into_parts().0;
    request.uri = key.uri().clone();
    let canonical = canonical_request(&request, key);
    let mut response = http::Response::new(()).into_parts().0;
    response.status = stored.status;
    response.headers = stored.headers.clone();
    CachePolicy::new_options(
        &stored_request(&canonical, &[]),
        &response,
        response_time,
        options(),
    )
}

/// A request `max-stale` lets a stale response be used (§5.2.1.2).
fn allows_stale(request: &request::Parts) -> bool {
    directives(&request.headers).contains_key("max-stale")
}

fn stale_rules(
    stored: &HeaderMap,
    request: &request::Parts,
    age: Duration,
    lifetime: Duration,
) -> StaleRules {
    let res = directives(stored);
    let req = directives(&request.headers);
    // §4.2.4: these forbid serving stale responses at all.
    if [
        "must-revalidate",
        "proxy-revalidate",
        "s-maxage",
        "no-cache",
    ]
    .iter()
    .any(|d| res.contains_key(*d))
    {
        return StaleRules::default();
    }
    let staleness = age.saturating_sub(lifetime).as_secs();
    let client_demands_validation = req.contains_key("no-cache")
        || req.contains_key("max-age")
        || req.contains_key("min-fresh")
        || (!request.headers.contains_key(header::CACHE_CONTROL)
            && pragma_no_cache(&request.headers));
    let swr = seconds(&res, "stale-while-revalidate");
    let sie = seconds(&res, "stale-if-error").max(seconds(&req, "stale-if-error"));
    StaleRules {
        while_revalidate: !client_demands_validation
            && age >= lifetime
            && swr.is_some_and(|window| staleness < window),
        if_error: sie.is_some_and(|window| staleness < window),
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
        assert_eq!(
            eval(&meta, &req(&[]), now, Duration::from_secs(600)),
            Verdict::Stale(StaleRules::default()),
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
                if_error: true
            }
        );
        assert_eq!(
            rules(100, &[]),
            StaleRules {
                while_revalidate: false,
                if_error: true
            }
        );
        assert_eq!(rules(400, &[]), StaleRules::default());
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
    fn vary_mismatch_is_not_usable() {
        let en = req(&[("accept-language", "en")]);
        let (meta, now) = stored(
            &[("cache-control", "max-age=60"), ("vary", "accept-language")],
            &en,
            1,
        );
        assert_eq!(eval(&meta, &en, now, DAY), Verdict::Fresh);
        assert_eq!(
            eval(&meta, &req(&[("accept-language", "fr")]), now, DAY),
            Verdict::Mismatch
        );
    }
}
