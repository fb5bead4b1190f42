//! Whether a response may be stored at all (RFC 9111 §3). Separate from
//! freshness: this runs once per response, the freshness rules on every hit.

use std::time::{Duration, SystemTime};

use http::header::{self, HeaderMap};
use http::{Method, StatusCode, Uri, request, response};

use super::age::{age_header, with_bounded_age};
use super::directives::directives;
use super::freshness::{freshness_lifetime, heuristically_cacheable};
use super::not_stored::NotStored;
use super::rules::FreshnessRule;
use crate::key::CacheKey;

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

/// Decides whether a response may be stored (RFC 9111 §3); on success, the
/// request headers it varies on. `request` is the canonical request.
pub fn check_storable(
    request: &request::Parts,
    method: &Method,
    response: &response::Parts,
    response_time: SystemTime,
    max_object_size: u64,
    rule: Option<&FreshnessRule>,
) -> Result<Vec<String>, NotStored> {
    if method != Method::GET {
        return Err(NotStored::Method);
    }
    let bounded = with_bounded_age(response);
    let response = bounded.as_ref();
    // §3.3: a 206 is kept only when it says exactly which bytes of the whole
    // it holds (a 200 to a range request is the whole, stored as any 200).
    if response.status == StatusCode::PARTIAL_CONTENT
        && crate::conditional::stored_part(&response.headers).is_none()
    {
        return Err(NotStored::Partial);
    }
    let req_cc = directives(&request.headers);
    let res_cc = directives(&response.headers);
    if req_cc.contains_key("no-store") {
        return Err(NotStored::Request);
    }
    // §3: only final responses, and a 304 is never stored as such.
    let status = response.status;
    if status.is_informational() || status == StatusCode::NOT_MODIFIED {
        return Err(NotStored::Status);
    }
    // §5.2.2.3: must-understand limits storing to status codes whose
    // caching rules the cache knows.
    if res_cc.contains_key("must-understand") && !understood(status) {
        return Err(NotStored::Status);
    }
    if res_cc.contains_key("no-store") {
        return Err(NotStored::NoStore);
    }
    if res_cc.contains_key("private") {
        return Err(NotStored::Private);
    }
    // §3.5: a shared cache stores responses to requests with credentials only
    // when the response says every user may have them.
    if request.headers.contains_key(header::AUTHORIZATION)
        && !["public", "s-maxage", "must-revalidate"]
            .iter()
            .any(|d| res_cc.contains_key(*d))
    {
        return Err(NotStored::Authorization);
    }
    let Some(vary) = crate::key::vary_names(&response.headers) else {
        return Err(NotStored::VaryStar);
    };
    if response.headers.contains_key(header::SET_COOKIE) && !res_cc.contains_key("public") {
        return Err(NotStored::SetCookie);
    }
    // §3: some sign the response may be reused: explicit freshness, `public`,
    // or a status code that is heuristically cacheable.
    let explicit = response.headers.contains_key(header::EXPIRES)
        || res_cc.contains_key("max-age")
        || res_cc.contains_key("s-maxage");
    if !(explicit || res_cc.contains_key("public") || heuristically_cacheable(status)) {
        return Err(NotStored::Status);
    }
    // An operator's rule that gives this response freshness makes it
    // reusable (everything above, the origin's refusals, still stands).
    let ruled = rule
        .filter(|r| r.gives_freshness())
        .and_then(|r| r.lifetime(status, &response.headers, Duration::ZERO))
        .is_some_and(|l| !l.is_zero());
    let too_big = response
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|len| len > max_object_size);
    if too_big {
        return Err(NotStored::TooBig);
    }
    // No cap matters here: any freshness at all makes it reusable.
    let lifetime = freshness_lifetime(status, &response.headers, response_time, Duration::MAX);
    let reusable = ruled
        || lifetime > age_header(&response.headers)
        || response.headers.contains_key(header::ETAG)
        || response.headers.contains_key(header::LAST_MODIFIED)
        || res_cc.contains_key("stale-while-revalidate")
        || res_cc.contains_key("stale-if-error");
    if !reusable {
        return Err(NotStored::NotReusable);
    }
    Ok(vary)
}

/// Whether a POST response may answer later GETs of its target (RFC 9110
/// §9.3.3): a success with explicit freshness whose `Content-Location` names
/// the target itself, i.e. the origin says this is the resource's current
/// representation. It is then checked like any GET response.
pub fn post_response_reusable(target: &Uri, response: &response::Parts) -> bool {
    let res_cc = directives(&response.headers);
    let explicit = response.headers.contains_key(header::EXPIRES)
        || res_cc.contains_key("max-age")
        || res_cc.contains_key("s-maxage");
    let names_target = response
        .headers
        .get(header::CONTENT_LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| crate::key::resolve_same_origin(target, v.trim()))
        .and_then(|uri| CacheKey::from_uri(&uri))
        .zip(CacheKey::from_uri(target))
        .is_some_and(|(location, target)| location.id() == target.id());
    response.status.is_success() && explicit && names_target
}

/// Status codes whose meaning, and so whose caching, RFC 9110 defines
/// (§5.2.2.3 `must-understand`).
fn understood(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        200..=206 | 300..=305 | 307 | 308 | 400..=417 | 421 | 422 | 426 | 500..=505
    )
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
            check_storable(r, &Method::GET, &resp(status, h), now, 1000, None).map(|_| ())
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
        let part = |range: &str, len: &str| {
            let h = [
                ("cache-control", "max-age=60"),
                ("content-range", range),
                ("content-length", len),
            ];
            check(206, &h, &r)
        };
        assert_eq!(part("bytes 4-9/10", "6"), Ok(()));
        // The body's size is not the range's, or the range is not one known
        // span of a known whole: serving it again would misplace bytes.
        assert_eq!(part("bytes 4-9/10", "5"), Err(NotStored::Partial));
        assert_eq!(part("bytes 4-9/*", "6"), Err(NotStored::Partial));
        assert_eq!(part("bytes 9-4/10", "6"), Err(NotStored::Partial));
        assert_eq!(part("bytes 4-10/10", "7"), Err(NotStored::Partial));
        // A whole response to a range request is stored like any other.
        let ranged = req(&[("range", "bytes=0-3")]);
        assert_eq!(
            check(200, &[("cache-control", "max-age=60")], &ranged),
            Ok(())
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
        // Any final status is stored with explicit freshness or `public` (§3);
        // without them, only heuristically cacheable ones.
        for status in [302, 400, 500, 502, 503, 504, 599] {
            for cc in ["max-age=60", "s-maxage=60", "public"] {
                assert_eq!(
                    check(status, &[("cache-control", cc), ("etag", "\"e\"")], &r),
                    Ok(()),
                    "{status} {cc}"
                );
            }
            assert_eq!(
                check(status, &[("expires", "Sun, 06 Nov 2044 08:49:37 GMT")], &r),
                Ok(()),
                "{status} expires"
            );
            assert_eq!(
                check(status, &[("etag", "\"e\"")], &r),
                Err(NotStored::Status),
                "{status} without freshness"
            );
        }
        assert_eq!(
            check(
                204,
                &[("last-modified", "Sun, 06 Nov 1994 08:49:37 GMT")],
                &r
            ),
            Ok(())
        );
        // must-understand: only status codes whose rules the cache knows.
        assert_eq!(
            check(599, &[("cache-control", "max-age=60, must-understand")], &r),
            Err(NotStored::Status)
        );
        assert_eq!(
            check(200, &[("cache-control", "max-age=60, must-understand")], &r),
            Ok(())
        );
        // Never a 304 or an interim response as such.
        assert_eq!(
            check(304, &[("cache-control", "max-age=60")], &r),
            Err(NotStored::Status)
        );
        // Directive names are case-insensitive (§5.2).
        assert_eq!(
            check(200, &[("cache-control", "No-StOrE, max-age=60")], &r),
            Err(NotStored::NoStore)
        );
        assert_eq!(
            check(200, &[("cache-control", "PRIVATE, max-age=60")], &r),
            Err(NotStored::Private)
        );
        // A request's no-store.
        let nostore = req(&[("cache-control", "no-store")]);
        assert_eq!(
            check(200, &[("cache-control", "max-age=60")], &nostore),
            Err(NotStored::Request)
        );
    }

    #[test]
    fn a_post_response_is_reusable_for_get_only_when_it_names_its_target_and_is_fresh() {
        let target: Uri = "http://a.test/form".parse().unwrap();
        let ok = |h: &[(&str, &str)]| post_response_reusable(&target, &resp(200, h));
        let fresh = ("cache-control", "max-age=60");
        assert!(ok(&[fresh, ("content-location", "/form")]));
        assert!(ok(&[fresh, ("content-location", "http://a.test/form")]));
        assert!(ok(&[
            ("expires", "Sun, 06 Nov 2044 08:49:37 GMT"),
            ("content-location", "/form")
        ]));
        assert!(!ok(&[fresh]), "no Content-Location");
        assert!(!ok(&[fresh, ("content-location", "/other")]));
        assert!(!ok(&[fresh, ("content-location", "http://b.test/form")]));
        assert!(
            !ok(&[("content-location", "/form")]),
            "no explicit freshness"
        );
        assert!(!post_response_reusable(
            &target,
            &resp(500, &[fresh, ("content-location", "/form")])
        ));
    }

    #[test]
    fn authorization_needs_public_s_maxage_or_must_revalidate() {
        let auth = req(&[("authorization", "Basic eDp5")]);
        let now = SystemTime::now();
        let check = |h: &[(&str, &str)]| {
            check_storable(&auth, &Method::GET, &resp(200, h), now, 1000, None).map(|_| ())
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
