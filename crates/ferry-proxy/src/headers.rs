//! Header rules a forwarding proxy must apply (RFC 9110 §7.6): hop-by-hop
//! headers are removed in both directions, `Via` names the proxy by pseudonym,
//! and the client's address is only disclosed when the config asks for it.

use std::net::IpAddr;

use http::HeaderMap;
use http::header::{self, HeaderName, HeaderValue};

use crate::config::ForwardedHeader;

const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// Always hop-by-hop (RFC 9110 §7.6.1, RFC 9112 §7), plus the proxy-only ones.
/// Ready-made names: removing by `&str` would parse each name on every message.
/// A `static`, not a `const`: each use of a `const` array builds and drops
/// its nine names again (a tenth of the hop-by-hop strip's cost per miss).
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    PROXY_CONNECTION,
    header::PROXY_AUTHORIZATION,
    header::PROXY_AUTHENTICATE,
];

/// Removes hop-by-hop headers, including every header named in `Connection`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none: one pass over the few names present is
    // cheaper than looking up (hashing) each hop-by-hop name in turn.
    if !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return;
    }
    if headers.contains_key(header::CONNECTION) || headers.contains_key(&PROXY_CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .chain(headers.get_all(&PROXY_CONNECTION).iter())
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            // `keep-alive` and `close` are the usual values and are removed below.
            .filter(|name| {
                !name.eq_ignore_ascii_case("keep-alive") && !name.eq_ignore_ascii_case("close")
            })
            .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Adds our `Via` entry; `ours_11` is the ready-made `1.1 <pseudonym>` value
/// for the common case of an HTTP/1.1 message that has no `Via` yet.
pub fn add_via_fast(
    headers: &mut HeaderMap,
    version: http::Version,
    pseudonym: &str,
    ours_11: &HeaderValue,
) {
    if version == http::Version::HTTP_11 && !headers.contains_key(header::VIA) {
        headers.insert(header::VIA, ours_11.clone());
    } else {
        add_via(headers, version, pseudonym);
    }
}

/// Appends `1.1 <pseudonym>` (or `1.0`) to `Via`.
pub fn add_via(headers: &mut HeaderMap, version: http::Version, pseudonym: &str) {
    let proto = match version {
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        _ => "1.1",
    };
    let ours = format!("{proto} {pseudonym}");
    let value = match headers.get(header::VIA).and_then(|v| v.to_str().ok()) {
        Some(existing) if !existing.is_empty() => format!("{existing}, {ours}"),
        _ => ours,
    };
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(header::VIA, value);
    }
}

/// True when a `Via` entry already carries our pseudonym: the request has been
/// through this proxy before, so forwarding it again would loop.
pub fn via_has_pseudonym(headers: &HeaderMap, pseudonym: &str) -> bool {
    headers
        .get_all(header::VIA)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|entry| {
            // entry = protocol SP received-by [ SP comment ]
            entry
                .split_whitespace()
                .nth(1)
                .is_some_and(|by| by.eq_ignore_ascii_case(pseudonym))
        })
}

/// Headers by which earlier hops (or the client itself) tell a site a
/// client's address. With `--forwarded-header none` none of them reaches the
/// origin: Ferry's promise is that sites never learn the client's address.
const CLIENT_ADDRESS_HEADERS: [&str; 17] = [
    "x-forwarded-for",
    "forwarded",
    "x-real-ip",
    "true-client-ip",
    "client-ip",
    "x-client-ip",
    "x-cluster-client-ip",
    "x-forwarded",
    "forwarded-for",
    "x-originating-ip",
    "x-remote-ip",
    "x-remote-addr",
    "x-proxyuser-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-azure-clientip",
    "x-appengine-user-ip",
];

/// Headers that only this proxy writes (`X-Ferry-*`, `X-Cache`): an
/// origin's own are removed, so a client can trust what it reads there.
pub fn strip_own_headers(headers: &mut HeaderMap) {
    remove_matching(headers, |name| {
        name.as_str().starts_with("x-ferry-") || name == X_CACHE
    });
}

/// Removes every header whose name matches, in one pass over the message's
/// own headers (a handful) rather than a lookup per name one might remove:
/// this runs for every fetch.
fn remove_matching(headers: &mut HeaderMap, matches: impl Fn(&HeaderName) -> bool) {
    if headers.keys().any(&matches) {
        let found: Vec<HeaderName> = headers.keys().filter(|n| matches(n)).cloned().collect();
        for name in found {
            headers.remove(name);
        }
    }
}

/// Adds the client's address only in the configured form. `None` adds
/// nothing and removes whatever address headers the request already carried.
pub fn add_forwarded(headers: &mut HeaderMap, mode: ForwardedHeader, client: IpAddr) {
    match mode {
        ForwardedHeader::None => {
            remove_matching(headers, |name| {
                CLIENT_ADDRESS_HEADERS.contains(&name.as_str())
            });
        }
        ForwardedHeader::XForwardedFor => {
            let value = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
                Some(prev) => format!("{prev}, {client}"),
                None => client.to_string(),
            };
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert("x-forwarded-for", v);
            }
        }
        ForwardedHeader::Forwarded => {
            let node = match client {
                IpAddr::V4(v4) => v4.to_string(),
                IpAddr::V6(v6) => format!("\"[{v6}]\""),
            };
            if let Ok(v) = HeaderValue::from_str(&format!("for={node}")) {
                headers.append(header::FORWARDED, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn strips_fixed_and_connection_named_headers() {
        let mut h = map(&[
            ("connection", "close, X-Secret"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("trailer", "x"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("proxy-connection", "keep-alive, X-Other"),
            ("x-other", "2"),
            ("proxy-authorization", "Basic abc"),
            ("proxy-authenticate", "Basic"),
            ("accept", "*/*"),
        ]);
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key("accept"));
    }

    #[test]
    fn each_hop_by_hop_header_alone_is_stripped_and_others_stay() {
        for name in &HOP_BY_HOP {
            let mut h = map(&[(name.as_str(), "x"), ("accept", "*/*"), ("x-a", "1")]);
            strip_hop_by_hop(&mut h);
            assert_eq!(h.len(), 2, "{name}: {h:?}");
            assert!(!h.contains_key(name));
        }
        let mut plain = map(&[("accept", "*/*"), ("x-keep-alive", "1")]);
        strip_hop_by_hop(&mut plain);
        assert_eq!(plain.len(), 2);
    }

    #[test]
    fn via_is_appended_and_detected() {
        let mut h = map(&[("via", "1.0 fred")]);
        add_via(&mut h, http::Version::HTTP_11, "ferry");
        assert_eq!(h["via"], "1.0 fred, 1.1 ferry");
        assert!(via_has_pseudonym(&h, "ferry"));
        assert!(via_has_pseudonym(
            &map(&[("via", "1.1 FERRY (Ferry/0.1)")]),
            "ferry"
        ));
        assert!(!via_has_pseudonym(
            &map(&[("via", "1.1 ferryman")]),
            "ferry"
        ));
        assert!(!via_has_pseudonym(&HeaderMap::new(), "ferry"));
    }

    #[test]
    fn client_address_only_when_asked() {
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let mut h = HeaderMap::new();
        add_forwarded(&mut h, ForwardedHeader::None, ip);
        assert!(h.is_empty());
        add_forwarded(&mut h, ForwardedHeader::XForwardedFor, ip);
        assert_eq!(h["x-forwarded-for"], "192.0.2.7");
        let mut h = HeaderMap::new();
        add_forwarded(
            &mut h,
            ForwardedHeader::Forwarded,
            "2001:db8::1".parse().unwrap(),
        );
        assert_eq!(h["forwarded"], "for=\"[2001:db8::1]\"");
    }
}
