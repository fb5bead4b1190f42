//! The HTTP caching rules, as plain functions over headers.
//!
//! RFC 9111 storability, freshness, request directives and `Vary` matching
//! come from the `http-cache-semantics` crate (as a shared cache). This module
//! adds what that crate leaves out or gets wrong for a proxy:
//! - a cap on heuristic freshness (§4.2.2),
//! - `stale-while-revalidate` and `stale-if-error` (RFC 5861), never with
//!   `must-revalidate`/`proxy-revalidate`/`s-maxage`/`no-cache` (§4.2.4),
//! - HEAD answered from a stored GET (§4: the crate only revalidates then),
//! - the original `Date` kept on hits (the crate replaces it with an RFC 2822
//!   date, which is not an HTTP date),
//! - answering a client's own conditional (RFC 9110 §13.2) and range
//!   (RFC 9110 §14) requests from a complete stored response,
//! - not storing `Set-Cookie` responses unless `public`, partial content, or
//!   responses that could never be reused.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, request, response};
use http_cache_semantics::{BeforeRequest, CacheOptions, CachePolicy};

use crate::key::CacheKey;
use crate::meta::Meta;

/// Why a response was not stored; feeds `Cache-Status` and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotStored {
    Method,
    /// The request forbade it (`Cache-Control: no-store` in the request).
    Request,
    Status,
    NoStore,
    Private,
    Authorization,
    VaryStar,
    SetCookie,
    Partial,
    TooBig,
    NotReusable,
    Disabled,
    Io,
}

impl NotStored {
    /// Whether the response itself forbids storing (so later responses for the
    /// same URL likely will too), rather than this request or the cache's state.
    pub fn is_about_the_response(self) -> bool {
        matches!(
            self,
            NotStored::Status
                | NotStored::NoStore
                | NotStored::Private
                | NotStored::VaryStar
                | NotStored::SetCookie
                | NotStored::NotReusable
                | NotStored::TooBig
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NotStored::Method => "method",
            NotStored::Request => "request-no-store",
            NotStored::Status => "status",
            NotStored::NoStore => "no-store",
            NotStored::Private => "private",
            NotStored::Authorization => "authorization",
            NotStored::VaryStar => "vary-star",
            NotStored::SetCookie => "set-cookie",
            NotStored::Partial => "partial",
            NotStored::TooBig => "too-big",
            NotStored::NotReusable => "not-reusable",
            NotStored::Disabled => "disabled",
            NotStored::Io => "io-error",
        }
    }
}

pub(crate) fn options() -> CacheOptions {
    CacheOptions {
        shared: true,
        ..CacheOptions::default()
    }
}

/// Cache-Control directives, names lower-cased, values unquoted.
pub fn directives(headers: &HeaderMap) -> HashMap<String, Option<String>> {
    let mut out = HashMap::new();
    for value in headers.get_all(header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for part in value.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (name, arg) = match part.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"').to_string())),
                None => (part, None),
            };
            out.entry(name.to_ascii_lowercase()).or_insert(arg);
        }
    }
    out
}

fn seconds(d: &HashMap<String, Option<String>>, name: &str) -> Option<u64> {
    d.get(name)?.as_deref()?.parse().ok()
}

/// The request as the cache evaluates it: GET (a HEAD is answered from a
/// stored GET), the normalized URI, and `Host` taken from it (RFC 9112 §3.2.2
/// makes the URI authoritative for a proxy).
pub fn canonical_request(req: &request::Parts, key: &CacheKey) -> request::Parts {
    let mut parts = http::Request::new(()).into_parts().0;
    parts.method = Method::GET;
    parts.uri = key.as_str().parse().unwrap_or_default();
    parts.headers = req.headers.clone();
    if let Some(host) = parts.uri.authority().map(|a| a.as_str().to_string()) {
        if let Ok(v) = HeaderValue::from_str(&host) {
            parts.headers.insert(header::HOST, v);
        }
    }
    parts
}

/// The request kept with a stored response: only what matching needs (the
/// host and the headers named by `Vary`), so clients' cookies and credentials
/// never reach the disk.
pub fn stored_request(canonical: &request::Parts, vary: &[String]) -> request::Parts {
    let mut parts = http::Request::new(()).into_parts().0;
    parts.method = Method::GET;
    parts.uri = canonical.uri.clone();
    for name in std::iter::once("host").chain(vary.iter().map(String::as_str)) {
        if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
            for v in canonical.headers.get_all(&name) {
                parts.headers.append(name.clone(), v.clone());
            }
        }
    }
    parts
}

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
    let policy = CachePolicy::new_options(
        &stored_request(request, &vary),
        response,
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

/// How long a stored response stays fresh (RFC 9111 §4.2.1), with heuristic
/// freshness capped at `heuristic_max` (§4.2.2 leaves the limit to the cache).
pub fn freshness_lifetime(
    meta: &Meta,
    policy: &CachePolicy,
    headers: &HeaderMap,
    heuristic_max: Duration,
) -> Duration {
    let at_arrival = meta.response_time();
    let lifetime = policy.time_to_live(at_arrival) + policy.age(at_arrival);
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
    age_header + now.duration_since(response_time).unwrap_or_default()
}

/// The `Age` a response arrived with.
pub fn age_header(headers: &HeaderMap) -> Duration {
    Duration::from_secs(
        headers
            .get(header::AGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0),
    )
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
    request.uri = key.as_str().parse().unwrap_or_default();
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

/// Request headers that ask the origin whether the stored response is still
/// current (RFC 9111 §4.3.1).
pub fn validators(stored: &HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::new();
    if let Some(etag) = stored.get(header::ETAG) {
        out.push((header::IF_NONE_MATCH, etag.clone()));
    }
    if let Some(lm) = stored.get(header::LAST_MODIFIED) {
        out.push((header::IF_MODIFIED_SINCE, lm.clone()));
    }
    out
}

/// Headers a 304 must not replace in the stored response (§3.2).
const KEPT_ON_UPDATE: &[&str] = &[
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "content-range",
];

/// Whether a 304 describes the stored response (§4.3.4: a strong validator in
/// the 304 must match the stored one).
pub fn not_modified_matches(stored: &HeaderMap, not_modified: &HeaderMap) -> bool {
    match (stored.get(header::ETAG), not_modified.get(header::ETAG)) {
        (Some(old), Some(new)) => {
            let strip = |v: &HeaderValue| {
                v.as_bytes()
                    .strip_prefix(b"W/")
                    .unwrap_or(v.as_bytes())
                    .to_vec()
            };
            strip(old) == strip(new)
        }
        (None, Some(_)) => false,
        _ => true,
    }
}

/// The stored headers updated with those of a 304 (§3.2).
pub fn merge_not_modified(stored: &HeaderMap, not_modified: &HeaderMap) -> HeaderMap {
    let mut merged = stored.clone();
    for name in not_modified.keys() {
        if KEPT_ON_UPDATE.contains(&name.as_str()) {
            continue;
        }
        merged.remove(name);
        for v in not_modified.get_all(name) {
            merged.append(name.clone(), v.clone());
        }
    }
    merged
}

/// Which part of the stored body a hit sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyPlan {
    None,
    Full,
    /// Inclusive byte range.
    Range(u64, u64),
}

/// Builds the response a stored object gives to `request`: `Age` set
/// (§5.1), a 304 for a matching client conditional, 206/416 for a single
/// byte range of a 200, no body for HEAD.
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

    if client_not_modified(&request.headers, &headers) {
        status = StatusCode::NOT_MODIFIED;
        plan = BodyPlan::None;
        headers.remove(header::CONTENT_LENGTH);
        headers.remove(header::CONTENT_TYPE);
    } else if status == StatusCode::OK && !head && range_applies(&request.headers, &headers) {
        match request
            .headers
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .map(|r| parse_range(r, body_len))
        {
            Some(RangeSpec::Satisfiable(start, end)) => {
                status = StatusCode::PARTIAL_CONTENT;
                plan = BodyPlan::Range(start, end);
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start + 1));
                if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{body_len}")) {
                    headers.insert(header::CONTENT_RANGE, v);
                }
            }
            Some(RangeSpec::Unsatisfiable) => {
                status = StatusCode::RANGE_NOT_SATISFIABLE;
                plan = BodyPlan::None;
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(0u64));
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{body_len}")) {
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
        .and_then(|v| httpdate::parse_http_date(v).ok());
    let modified = stored
        .get(header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    matches!((since, modified), (Some(since), Some(modified)) if modified <= since)
}

/// RFC 9110 §13.1.5: a Range with If-Range applies only if the validator
/// still matches (strong comparison for entity tags, exact date otherwise).
fn range_applies(request: &HeaderMap, stored: &HeaderMap) -> bool {
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
    use super::*;
    use crate::meta::{Kind, to_ms};

    fn req(headers: &[(&str, &str)]) -> request::Parts {
        let mut b = http::Request::builder().uri("http://a.test/x");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let parts = b.body(()).unwrap().into_parts().0;
        canonical_request(&parts, &key())
    }

    fn key() -> CacheKey {
        CacheKey::from_uri(&"http://a.test/x".parse().unwrap()).unwrap()
    }

    fn resp(status: u16, headers: &[(&str, &str)]) -> response::Parts {
        let mut b = http::Response::builder().status(status);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    /// A stored entry received `age` seconds before `now`.
    fn stored(headers: &[(&str, &str)], request: &request::Parts, age: u64) -> (Meta, SystemTime) {
        let now = SystemTime::now();
        let received = now - Duration::from_secs(age);
        let response = resp(200, headers);
        let (policy, vary) =
            check_storable(request, &Method::GET, &response, received, 1 << 30).unwrap();
        let mut meta = Meta {
            kind: Kind::Object,
            key: key().as_str().into(),
            vary,
            generation: 0,
            status: 200,
            headers: Vec::new(),
            policy: Some(policy),
            request_time_ms: to_ms(received),
            response_time_ms: to_ms(received),
        };
        meta.set_headers(&response.headers);
        (meta, now)
    }

    const DAY: Duration = Duration::from_secs(86400);

    fn verdict(headers: &[(&str, &str)], age: u64, request_headers: &[(&str, &str)]) -> Verdict {
        let (meta, now) = stored(headers, &req(&[]), age);
        eval(&meta, &req(request_headers), now, DAY)
    }

    fn eval(
        meta: &Meta,
        request: &request::Parts,
        now: SystemTime,
        heuristic_max: Duration,
    ) -> Verdict {
        let headers = meta.header_map();
        let policy = meta.policy.as_ref().unwrap();
        let stored = Stored {
            status: meta.status(),
            headers: &headers,
            vary: &meta.vary,
            lifetime: freshness_lifetime(meta, policy, &headers, heuristic_max),
            age: policy.age(now),
        };
        evaluate(&stored, || Some(Box::new(policy.clone())), request, now)
    }

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
            age: meta.policy.as_ref().unwrap().age(now),
        };
        hit_response(&stored, request, len)
    }

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

    #[test]
    fn the_stored_request_keeps_only_host_and_varying_headers() {
        let r = req(&[
            ("cookie", "secret"),
            ("accept-language", "en"),
            ("authorization", "x"),
        ]);
        let kept = stored_request(&r, &["accept-language".to_string()]);
        assert_eq!(kept.headers.len(), 2, "{:?}", kept.headers);
        assert_eq!(kept.headers["host"], "a.test");
        assert_eq!(kept.headers["accept-language"], "en");
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
    fn a_304_updates_stored_headers_but_not_the_body_framing() {
        let mut stored = HeaderMap::new();
        stored.insert("etag", "\"a\"".parse().unwrap());
        stored.insert("content-length", "10".parse().unwrap());
        stored.insert("x-old", "1".parse().unwrap());
        stored.insert("cache-control", "max-age=0".parse().unwrap());
        let mut nm = HeaderMap::new();
        nm.insert("etag", "\"a\"".parse().unwrap());
        nm.insert("content-length", "0".parse().unwrap());
        nm.insert("cache-control", "max-age=60".parse().unwrap());
        assert!(not_modified_matches(&stored, &nm));
        let merged = merge_not_modified(&stored, &nm);
        assert_eq!(merged["content-length"], "10");
        assert_eq!(merged["cache-control"], "max-age=60");
        assert_eq!(merged["x-old"], "1");
        let mut other = HeaderMap::new();
        other.insert("etag", "\"b\"".parse().unwrap());
        assert!(!not_modified_matches(&stored, &other));
    }
}
