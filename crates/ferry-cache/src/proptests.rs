//! Property tests: no header value a client or an origin can send, and no
//! stored object read back from disk, makes the cache's rules panic. The
//! numbers are drawn from the extremes on purpose (20-digit values,
//! `u64::MAX`, negative numbers, the year 99999).

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use proptest::prelude::*;

use crate::conditional;
use crate::entry::Entry;
use crate::key::{CacheKey, ObjectId};
use crate::meta::{Kind, Meta, to_ms};
use crate::policy;

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("0".to_string()),
        Just("18446744073709551615".to_string()),
        Just("18446744073709551616".to_string()),
        Just("99999999999999999999999".to_string()),
        Just("-1".to_string()),
        Just("1.5".to_string()),
        Just("9223372036854775807".to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<u32>().prop_map(|n| n.to_string()),
        "[0-9]{1,25}",
    ]
}

fn date() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Fri, 31 Dec 99999 23:59:59 GMT".to_string()),
        Just("Fri, 31 Dec 9999 23:59:59 GMT".to_string()),
        Just("Thu, 01 Jan 1970 00:00:00 GMT".to_string()),
        Just("Mon, 01 Jan 0001 00:00:00 GMT".to_string()),
        Just("0".to_string()),
        Just("-1".to_string()),
        "[ -~]{0,40}",
    ]
}

fn cache_control() -> impl Strategy<Value = String> {
    let directive = prop_oneof![
        number().prop_map(|n| format!("max-age={n}")),
        number().prop_map(|n| format!("s-maxage={n}")),
        number().prop_map(|n| format!("max-stale={n}")),
        number().prop_map(|n| format!("min-fresh={n}")),
        number().prop_map(|n| format!("stale-while-revalidate={n}")),
        number().prop_map(|n| format!("stale-if-error={n}")),
        Just("no-cache".to_string()),
        Just("must-revalidate".to_string()),
        Just("public".to_string()),
        Just("only-if-cached".to_string()),
        Just("max-stale".to_string()),
        "[ -~]{0,20}",
    ];
    prop::collection::vec(directive, 0..4).prop_map(|d| d.join(", "))
}

fn range() -> impl Strategy<Value = String> {
    prop_oneof![
        (number(), number()).prop_map(|(a, b)| format!("bytes={a}-{b}")),
        number().prop_map(|a| format!("bytes={a}-")),
        number().prop_map(|b| format!("bytes=-{b}")),
        "[ -~]{0,30}",
    ]
}

fn headers(pairs: &[(&str, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            map.append(n, v);
        }
    }
    map
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_rules_never_panic_on_any_header_values(
        res_cc in cache_control(),
        req_cc in cache_control(),
        age in number(),
        expires in date(),
        date_value in date(),
        last_modified in date(),
        content_length in number(),
        range_value in range(),
        if_modified_since in date(),
        status in prop_oneof![Just(200u16), Just(203), Just(204), Just(301), Just(404), Just(500)],
        body_len in prop_oneof![Just(0u64), Just(1), Just(u64::MAX), any::<u64>()],
        arrived_secs_ago in prop_oneof![Just(0u64), Just(u64::MAX / 2), any::<u32>().prop_map(u64::from)],
        heuristic_max in any::<u64>(),
    ) {
        let key = CacheKey::from_uri(&"http://a.test/x".parse().unwrap()).unwrap();
        let mut response = http::Response::new(()).into_parts().0;
        response.status = http::StatusCode::from_u16(status).unwrap();
        response.headers = headers(&[
            ("cache-control", res_cc),
            ("age", age),
            ("expires", expires),
            ("date", date_value),
            ("last-modified", last_modified),
            ("content-length", content_length),
            ("etag", "\"e\"".to_string()),
        ]);
        let mut request = http::Request::new(()).into_parts().0;
        request.uri = key.uri().clone();
        request.headers = headers(&[("cache-control", req_cc)]);
        let canonical = policy::canonical_request(&request, &key);
        // The request a hit answers: conditionals and a range on top.
        let mut asking = canonical.clone();
        asking.headers.extend(headers(&[
            ("range", range_value),
            ("if-modified-since", if_modified_since),
        ]));
        let now = SystemTime::now();
        let arrived = now
            .checked_sub(Duration::from_secs(arrived_secs_ago))
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let _ = policy::response_forbids_storing(&response.headers);
        let Ok(vary) =
            policy::check_storable(&canonical, &Method::GET, &response, arrived, u64::MAX, None)
        else {
            return Ok(());
        };
        let mut meta = Meta {
            kind: Kind::Object,
            key: key.as_str().into(),
            vary,
            generation: 0,
            status,
            headers: Vec::new(),
            request_time_ms: to_ms(arrived),
            response_time_ms: to_ms(arrived),
        };
        meta.set_headers(&response.headers);
        let entry = Entry::new(
            ObjectId::digest(b"x"),
            meta,
            body_len,
            None,
            None,
            Duration::from_secs(heuristic_max),
        );
        for at in [now, now + Duration::from_secs(1 << 40), SystemTime::UNIX_EPOCH] {
            let stored = entry.stored(at);
            let _ = policy::evaluate(&stored, &canonical);
            let _ = entry.ttl(at);
            let _ = conditional::hit_response(&stored, &asking, body_len);
        }
    }

    #[test]
    fn ranges_never_panic_and_stay_inside_the_body(value in range(), len in any::<u64>()) {
        if let conditional::RangeSpec::Satisfiable(start, end) = conditional::parse_range(&value, len) {
            prop_assert!(start <= end && end < len);
        }
    }

    #[test]
    fn any_bytes_read_as_an_object_head_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Meta::decode(&bytes);
        let mut with_magic = crate::meta::MAGIC.to_vec();
        with_magic.extend_from_slice(&bytes);
        let _ = Meta::decode(&with_magic);
    }

    #[test]
    fn stored_objects_with_extreme_times_never_panic(
        response_ms in any::<u64>(),
        request_ms in any::<u64>(),
        age in number(),
        max_age in number(),
    ) {
        let mut meta = Meta::vary_marker("http://a.test/", vec![], 0);
        meta.kind = Kind::Object;
        meta.status = 200;
        meta.response_time_ms = response_ms;
        meta.request_time_ms = request_ms;
        meta.headers = vec![
            ("age".into(), age),
            ("cache-control".into(), format!("max-age={max_age}")),
        ];
        let entry = Entry::new(ObjectId::digest(b"y"), meta, 10, None, None, Duration::MAX);
        let now = SystemTime::now();
        let _ = entry.ttl(now);
        let _ = entry.stored(now);
    }
}
