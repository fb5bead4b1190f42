//! Cache keys (RFC 9111 §2): the target URI, normalized, for the primary key;
//! plus the values of the request headers a response's `Vary` names, for the
//! secondary key that tells variants apart. Objects are named on disk and in
//! memory by a 128-bit BLAKE3 digest of their key.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

use http::{HeaderMap, Uri};

/// The normalized target URI: scheme and host lower-cased, default port
/// dropped, empty path as `/`. Path and query are kept byte for byte.
///
/// Built once per request and passed to every cache step (lookup, collapse,
/// store, refresh, invalidation), so the text, its digest and its URI form
/// are each computed at most once.
#[derive(Debug, Clone)]
pub struct CacheKey {
    text: String,
    /// Digest of `text`, computed once: every lookup, collapse and store
    /// names the object by it.
    id: ObjectId,
    /// `text` as a URI, for the requests the policy evaluates; parsed on
    /// first use (a plain fresh hit never needs it).
    uri: OnceLock<Uri>,
}

impl PartialEq for CacheKey {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for CacheKey {}

impl Hash for CacheKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

impl CacheKey {
    /// `None` for URIs that cannot be cached (no scheme or host, or a scheme
    /// other than http/https).
    pub fn from_uri(uri: &Uri) -> Option<CacheKey> {
        let scheme = uri.scheme_str()?;
        let https = if scheme.eq_ignore_ascii_case("https") {
            true
        } else if scheme.eq_ignore_ascii_case("http") {
            false
        } else {
            return None;
        };
        let host = uri.host()?;
        let default_port = if https { 443 } else { 80 };
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let path = if path.is_empty() { "/" } else { path };
        // Built in one allocation: this runs on every request the cache sees.
        let mut key = String::with_capacity(8 + host.len() + 6 + path.len());
        key.push_str(if https { "https://" } else { "http://" });
        let host_start = key.len();
        key.push_str(host);
        key[host_start..].make_ascii_lowercase();
        if let Some(port) = uri.port_u16().filter(|&p| p != default_port) {
            key.push(':');
            key.push_str(itoa::Buffer::new().format(port));
        }
        key.push_str(path);
        let id = ObjectId::digest(key.as_bytes());
        Some(CacheKey {
            text: key,
            id,
            uri: OnceLock::new(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The normalized URI (the text parsed, once).
    pub fn uri(&self) -> &Uri {
        self.uri
            .get_or_init(|| self.text.parse().unwrap_or_default())
    }

    /// The id of the object (or vary marker) stored under the primary key.
    pub fn id(&self) -> ObjectId {
        self.id
    }

    /// The id of the variant selected by `request` for a response that varies
    /// on `vary` (lower-case header names, sorted), under the vary marker of
    /// `generation`. Header values are compared as normalized by
    /// [`vary_value`], so requests that say the same thing differently share
    /// a variant.
    pub fn variant_id(&self, generation: u64, vary: &[String], request: &HeaderMap) -> ObjectId {
        let mut hasher = blake3::Hasher::new();
        hasher.update(self.text.as_bytes());
        hasher.update(&generation.to_le_bytes());
        for name in vary {
            hasher.update(b"\0");
            hasher.update(name.as_bytes());
            hasher.update(b"\0");
            hasher.update(&vary_value(name, request));
        }
        ObjectId::from_hash(hasher.finalize())
    }
}

/// A `Vary`-nominated request header as the cache compares it (RFC 9111
/// §4.1 lets a cache normalize what is semantically the same): all field
/// lines combined as one list, whitespace around members dropped, empty
/// members ignored. Language ranges are case-insensitive and, for caching,
/// their order does not select a different response, so `Accept-Language`
/// members are also lower-cased and sorted.
pub fn vary_value(name: &str, request: &HeaderMap) -> Vec<u8> {
    let mut members: Vec<Vec<u8>> = Vec::new();
    for value in request.get_all(name) {
        for member in value.as_bytes().split(|&b| b == b',') {
            let member = member.trim_ascii();
            if !member.is_empty() {
                members.push(member.to_vec());
            }
        }
    }
    if name == "accept-language" {
        for member in &mut members {
            member.retain(|b| !b.is_ascii_whitespace());
            member.make_ascii_lowercase();
        }
        members.sort();
    }
    members.join(&b","[..])
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The names of the request headers a `Vary` field selects on, lower case,
/// sorted and deduplicated; `None` for `Vary: *` (never reusable).
pub fn vary_names(response: &HeaderMap) -> Option<Vec<String>> {
    let mut names = Vec::new();
    for value in response.get_all(http::header::VARY) {
        let Ok(value) = value.to_str() else {
            return None;
        };
        for name in value.split(',') {
            let name = name.trim().to_ascii_lowercase();
            if name == "*" {
                return None;
            }
            if !name.is_empty() {
                names.push(name);
            }
        }
    }
    names.sort();
    names.dedup();
    Some(names)
}

/// 128 bits of BLAKE3: collisions are not a practical concern at cache sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId(pub u128);

impl ObjectId {
    pub fn digest(bytes: &[u8]) -> ObjectId {
        ObjectId::from_hash(blake3::hash(bytes))
    }

    fn from_hash(hash: blake3::Hash) -> ObjectId {
        let mut first = [0u8; 16];
        first.copy_from_slice(&hash.as_bytes()[..16]);
        ObjectId(u128::from_be_bytes(first))
    }

    pub fn to_hex(self) -> String {
        format!("{:032x}", self.0)
    }

    pub fn from_hex(hex: &str) -> Option<ObjectId> {
        if hex.len() != 32 {
            return None;
        }
        u128::from_str_radix(hex, 16).ok().map(ObjectId)
    }
}

/// `Location`/`Content-Location` resolved against the request URI, if it
/// names the same origin (scheme, host and port).
pub(crate) fn resolve_same_origin(base: &Uri, value: &str) -> Option<Uri> {
    if value.starts_with('/') && !value.starts_with("//") {
        let mut parts = base.clone().into_parts();
        parts.path_and_query = Some(value.parse().ok()?);
        return Uri::from_parts(parts).ok();
    }
    let uri: Uri = value.parse().ok()?;
    let same = uri.scheme() == base.scheme()
        && uri.host().map(str::to_ascii_lowercase) == base.host().map(str::to_ascii_lowercase)
        && uri.port_u16() == base.port_u16();
    same.then_some(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(uri: &str) -> Option<String> {
        CacheKey::from_uri(&uri.parse().unwrap()).map(|k| {
            assert_eq!(k.id(), ObjectId::digest(k.as_str().as_bytes()));
            k.text
        })
    }

    #[test]
    fn uris_are_normalized() {
        let cases = [
            ("http://Example.COM/a?b=C", Some("http://example.com/a?b=C")),
            ("http://example.com:80/", Some("http://example.com/")),
            ("https://example.com:443/x", Some("https://example.com/x")),
            (
                "http://example.com:8080/x",
                Some("http://example.com:8080/x"),
            ),
            ("http://example.com", Some("http://example.com/")),
            ("ftp://example.com/", None),
            ("/relative", None),
        ];
        for (uri, want) in cases {
            assert_eq!(key(uri).as_deref(), want, "{uri}");
        }
    }

    #[test]
    fn vary_names_are_normalized_and_star_is_none() {
        let mut h = HeaderMap::new();
        h.append("vary", "Accept-Encoding, accept-language".parse().unwrap());
        h.append("vary", "Accept-Encoding".parse().unwrap());
        assert_eq!(
            vary_names(&h),
            Some(vec![
                "accept-encoding".to_string(),
                "accept-language".to_string()
            ])
        );
        h.append("vary", "*".parse().unwrap());
        assert_eq!(vary_names(&h), None);
        assert_eq!(vary_names(&HeaderMap::new()), Some(vec![]));
    }

    #[test]
    fn variants_differ_by_the_named_header_values_only() {
        let k = CacheKey::from_uri(&"http://a.test/".parse().unwrap()).unwrap();
        let vary = vec!["accept-language".to_string()];
        let mut en = HeaderMap::new();
        en.insert("accept-language", "en".parse().unwrap());
        en.insert("user-agent", "x".parse().unwrap());
        let mut en2 = HeaderMap::new();
        en2.insert("accept-language", "en".parse().unwrap());
        let mut fr = HeaderMap::new();
        fr.insert("accept-language", "fr".parse().unwrap());
        assert_eq!(k.variant_id(1, &vary, &en), k.variant_id(1, &vary, &en2));
        assert_ne!(k.variant_id(1, &vary, &en), k.variant_id(1, &vary, &fr));
        assert_ne!(k.variant_id(1, &vary, &en), k.id());
        assert_ne!(k.variant_id(1, &vary, &en), k.variant_id(2, &vary, &en));
    }

    #[test]
    fn equivalent_varying_headers_select_the_same_variant() {
        let k = CacheKey::from_uri(&"http://a.test/x".parse().unwrap()).unwrap();
        let id = |name: &str, lines: &[&str]| {
            let mut h = HeaderMap::new();
            for line in lines {
                h.append(
                    http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    line.parse().unwrap(),
                );
            }
            k.variant_id(1, &[name.to_string()], &h)
        };
        assert_eq!(id("foo", &["1, 2"]), id("foo", &["1", "2"]));
        assert_eq!(id("foo", &["1,2"]), id("foo", &[" 1, 2 "]));
        assert_ne!(
            id("foo", &["1, 2"]),
            id("foo", &["2, 1"]),
            "order matters in general"
        );
        assert_ne!(id("foo", &["a"]), id("foo", &["A"]), "and so does case");
        let lang = "accept-language";
        assert_eq!(id(lang, &["en, de"]), id(lang, &["de, en"]));
        assert_eq!(id(lang, &["en, de"]), id(lang, &["eN, De"]));
        assert_eq!(id(lang, &["en, de"]), id(lang, &[" en ,   de"]));
        assert_ne!(id(lang, &["en"]), id(lang, &["de"]));
        assert_ne!(id(lang, &["en"]), id(lang, &[]));
    }

    #[test]
    fn ids_round_trip_through_hex() {
        let id = ObjectId::digest(b"x");
        assert_eq!(ObjectId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(ObjectId::from_hex("zz"), None);
    }
}
