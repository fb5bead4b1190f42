//! Any response and request headers through the cache's rules: storability,
//! freshness, the verdict on a stored response, and the answer to a range or
//! conditional request must never panic.
#![no_main]

use std::time::{Duration, SystemTime};

use ferry_cache::{CacheKey, conditional, policy};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;

/// `name: value` lines, the first block for the response, the second (after
/// an empty line) for the request.
fn headers(text: &str) -> HeaderMap {
    let mut map = HeaderMap::new();
    for line in text.lines() {
        if let Some((n, v)) = line.split_once(':') {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(n.trim().as_bytes()),
                HeaderValue::from_str(v.trim()),
            ) {
                map.append(n, v);
            }
        }
    }
    map
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (res, req) = text.split_once("\n\n").unwrap_or((&text, ""));
    let Some(key) = CacheKey::from_uri(&"http://a.test/x".parse().unwrap_or_default()) else {
        return;
    };
    let mut response = http::Response::new(()).into_parts().0;
    response.headers = headers(res);
    let mut request = http::Request::new(()).into_parts().0;
    request.uri = key.uri().clone();
    request.headers = headers(req);
    let canonical = policy::canonical_request(&request, &key);
    let now = SystemTime::now();
    let _ = policy::response_forbids_storing(&response.headers);
    let Ok((cache_policy, vary)) =
        policy::check_storable(&canonical, &Method::GET, &response, now, u64::MAX)
    else {
        return;
    };
    let stored = policy::Stored {
        status: response.status,
        headers: &response.headers,
        vary: &vary,
        lifetime: Duration::from_secs(60),
        age: policy::current_age(policy::age_header(&response.headers), now, now),
    };
    let _ = policy::evaluate(&stored, || Some(Box::new(cache_policy.clone())), &canonical, now);
    let _ = conditional::hit_response(&stored, &request, data.len() as u64);
});
