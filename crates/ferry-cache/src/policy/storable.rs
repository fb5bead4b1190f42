//! Whether a response may be stored at all (RFC 9111 §3), and the policy it
//! is kept with. Separate from freshness: this runs once per response, the
//! freshness rules on every hit.

use std::time::{Duration, SystemTime};

use http::header::{self, HeaderMap};
use http::{Method, StatusCode, request, response};
use http_cache_semantics::CachePolicy;

use super::{NotStored, directives, options, stored_request};

/// The refusals a response's own headers decide (no-store, private,
/// `Vary: *`), checked without allocating: most uncacheable responses stop here.
pub fn response_forbids_storing(response: &HeaderMap) -> Option<NotStored> {
    for value in response.get_all(header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let name = directive.split('=').next().unwrap_or("").trim();
            if name.eq_ignore_ascii_case("no-store") {
                return Some(NotStored::NoStore);
            }
            if name.eq_ignore_ascii_case("private") {
                return Some(NotStored::Private);
            }
        }
    }
    let vary_star = response
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|n| n.trim() == "*"));
    vary_star.then_some(NotStored::VaryStar)
}

/// Decides whether a response may be stored (RFC 9111 §3) and builds the
/// policy it will be evaluated with. `request` is the canonical request.
pub fn check_storable(
    request: &request::Parts,
    method: &Method,
    response: &response::Parts,
    response_time: SystemTime,
    max_object_size: u64,
) -> Result<(CachePolicy, Vec<String>), NotStored> {
    if method != Method::GET {
        return Err(NotStored::Method);
    }
    let bounded = super::with_bounded_age(response);
    let response = bounded.as_ref();
    if request.headers.contains_key(header::RANGE) || response.status == StatusCode::PARTIAL_CONTENT
    {
        // Only complete objects are stored.
        return Err(NotStored::Partial);
    }
    let req_cc = directives(&request.headers);
    let res_cc = directives(&response.headers);
    if req_cc.contains_key("no-store") {
        return Err(NotStored::Request);
    }
    if res_cc.contains_key("no-store") {
        return Err(NotStored::NoStore);
    }
    if res_cc.contains_key("private") {
        return Err(NotStored::Private);
    }
    let Some(vary) = crate::key::vary_names(&response.headers) else {
        return Err(NotStored::VaryStar);
    };
    if response.headers.contains_key(header::SET_COOKIE) && !res_cc.contains_key("public") {
        // Another user must never receive this user's cookie.
        return Err(NotStored::SetCookie);
    }
    let too_big = response
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|len| len > max_object_size);
    if too_big {
        return Err(NotStored::TooBig);
    }
    // The full request decides storability (Authorization, §3.5); the policy
    // that is kept sees only the stored request.
    let full = CachePolicy::new_options(request, response, response_time, options());
    if !full.is_storable() {
        return Err(if request.headers.contains_key(header::AUTHORIZATION) {
            NotStored::Authorization
        } else {
            NotStored::Status
        });
    }
    // What is kept never holds a user's own headers (see `PER_USER_HEADERS`).
    let kept = match super::without_per_user(&response.headers) {
        std::borrow::Cow::Borrowed(_) => std::borrow::Cow::Borrowed(response),
        std::borrow::Cow::Owned(headers) => {
            let mut parts = http::Response::new(()).into_parts().0;
            parts.status = response.status;
            parts.version = response.version;
            parts.headers = headers;
            std::borrow::Cow::Owned(parts)
        }
    };
    let policy = CachePolicy::new_options(
        &stored_request(request, &vary),
        kept.as_ref(),
        response_time,
        options(),
    );
    let reusable = policy.time_to_live(response_time) > Duration::ZERO
        || response.headers.contains_key(header::ETAG)
        || response.headers.contains_key(header::LAST_MODIFIED)
        || res_cc.contains_key("stale-while-revalidate")
        || res_cc.contains_key("stale-if-error");
    if !reusable {
        return Err(NotStored::NotReusable);
    }
    Ok((policy, vary))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::test_support::{req, resp};

    #[test]
    fn storability_follows_rfc_9111_section_3() {
        let r = req(&[]);
        let now = SystemTime::now();
        let check = |status: u16, h: &[(&str, &str)], r: &request::Parts| {
            check_storable(r, &Method::GET, &resp(status, h), now, 1000).map(|_| ())
        };
        assert_eq!(check(200, &[("cache-control", "max-age=60")], &r), Ok(()));
        for status in [203, 204, 300, 301, 308, 404, 405, 410, 414, 501] {
            assert_eq!(
                check(status, &[("cache-control", "max-age=60")], &r),
                Ok(()),
                "{status}"
            );
        }
        assert_eq!(
            check(206, &[("cache-control", "max-age=60")], &r),
            Err(NotStored::Partial)
        );
        assert_eq!(
            check(200, &[("cache-control", "no-store, max-age=60")], &r),
            Err(NotStored::NoStore)
        );
        assert_eq!(
            check(200, &[("cache-control", "private, max-age=60")], &r),
            Err(NotStored::Private)
        );
        assert_eq!(
            check(200, &[("cache-control", "max-age=60"), ("vary", "*")], &r),
            Err(NotStored::VaryStar)
        );
        assert_eq!(
            check(
                200,
                &[("cache-control", "max-age=60"), ("set-cookie", "a=1")],
                &r
            ),
            Err(NotStored::SetCookie)
        );
        assert_eq!(
            check(
                200,
                &[
                    ("cache-control", "public, max-age=60"),
                    ("set-cookie", "a=1")
                ],
                &r
            ),
            Ok(())
        );
        assert_eq!(
            check(
                200,
                &[("cache-control", "max-age=60"), ("content-length", "5000")],
                &r
            ),
            Err(NotStored::TooBig)
        );
        // Nothing to decide freshness or validate with: pointless to keep.
        assert_eq!(check(200, &[], &r), Err(NotStored::NotReusable));
        // 500 is not cacheable by default; with explicit freshness it is not
        // understood either.
        assert_eq!(
            check(500, &[("cache-control", "max-age=60")], &r),
            Err(NotStored::Status)
        );
        // A request's no-store.
        let nostore = req(&[("cache-control", "no-store")]);
        assert_eq!(
            check(200, &[("cache-control", "max-age=60")], &nostore),
            Err(NotStored::Request)
        );
    }

    #[test]
    fn authorization_needs_public_s_maxage_or_must_revalidate() {
        let auth = req(&[("authorization", "Basic eDp5")]);
        let now = SystemTime::now();
        let check = |h: &[(&str, &str)]| {
            check_storable(&auth, &Method::GET, &resp(200, h), now, 1000).map(|_| ())
        };
        assert_eq!(
            check(&[("cache-control", "max-age=60")]),
            Err(NotStored::Authorization)
        );
        assert_eq!(check(&[("cache-control", "public, max-age=60")]), Ok(()));
        assert_eq!(check(&[("cache-control", "s-maxage=60")]), Ok(()));
        assert_eq!(
            check(&[("cache-control", "must-revalidate, max-age=60")]),
            Ok(())
        );
    }
}
