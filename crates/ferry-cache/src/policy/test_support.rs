//! Helpers shared by the tests of the policy and of `crate::conditional`:
//! requests, responses, and a stored response evaluated at a given age.

use std::time::{Duration, SystemTime};

use http::{Method, request, response};

use super::{
    Stored, Verdict, age_header, canonical_request, check_storable, current_age, evaluate,
    freshness_lifetime,
};
use crate::key::CacheKey;
use crate::meta::{Kind, Meta, to_ms};

pub(crate) fn req(headers: &[(&str, &str)]) -> request::Parts {
    let mut b = http::Request::builder().uri("http://a.test/x");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let parts = b.body(()).unwrap().into_parts().0;
    canonical_request(&parts, &key())
}

pub(crate) fn key() -> CacheKey {
    CacheKey::from_uri(&"http://a.test/x".parse().unwrap()).unwrap()
}

pub(crate) fn resp(status: u16, headers: &[(&str, &str)]) -> response::Parts {
    let mut b = http::Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).unwrap().into_parts().0
}

/// A stored entry received `age` seconds before `now`.
pub(crate) fn stored(
    headers: &[(&str, &str)],
    request: &request::Parts,
    age: u64,
) -> (Meta, SystemTime) {
    let now = SystemTime::now();
    let received = now - Duration::from_secs(age);
    let response = resp(200, headers);
    let vary = check_storable(request, &Method::GET, &response, received, 1 << 30, None).unwrap();
    let mut meta = Meta {
        kind: Kind::Object,
        key: key().as_str().into(),
        vary,
        generation: 0,
        status: 200,
        headers: Vec::new(),
        request_time_ms: to_ms(received),
        response_time_ms: to_ms(received),
    };
    meta.set_headers(&response.headers);
    (meta, now)
}

pub(crate) const DAY: Duration = Duration::from_secs(86400);

pub(crate) fn eval(
    meta: &Meta,
    request: &request::Parts,
    now: SystemTime,
    heuristic_max: Duration,
) -> Verdict {
    let headers = meta.header_map();
    let stored = Stored {
        status: meta.status(),
        headers: &headers,
        vary: &meta.vary,
        lifetime: freshness_lifetime(meta.status(), &headers, meta.response_time(), heuristic_max),
        age: current_age(age_header(&headers), meta.response_time(), now),
    };
    evaluate(&stored, request)
}
