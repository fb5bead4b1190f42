//! What an operator's cache rule may change about freshness, and what it
//! may not. Package registries and download sites often send no freshness
//! and no validators at all, so RFC 9111 gives a cache nothing to reuse;
//! operators of Squid, nginx and Varnish fix that with rules
//! (`refresh_pattern`, `proxy_cache_valid`, `beresp.ttl`), and this is
//! Ferry's. A rule only decides *how long* a response the origin allows a
//! shared cache to keep is fresh: whether it may be stored at all (no-store,
//! private, `Set-Cookie`, a request with `Authorization`) stays the origin's
//! and RFC 9111's decision (`storable`), and so does `no-cache` (the origin
//! asks for every use to be validated).

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use http::header::{self, HeaderMap};

use super::directives::directives;

/// How long an `immutable` rule keeps a response fresh: content-addressed
/// and versioned files never change under their name.
pub const IMMUTABLE_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// A rule's freshness settings, as the cache applies them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FreshnessRule {
    /// Named in `Cache-Status` (`detail=rule:NAME`) when it decided.
    pub name: Arc<str>,
    /// Freshness when the origin gives none (no `max-age`, `s-maxage` or
    /// `Expires`); it replaces the heuristic.
    pub fresh: Option<Duration>,
    /// A floor on the freshness, whatever gave it.
    pub min_fresh: Option<Duration>,
    /// A ceiling on the freshness, whatever gave it.
    pub max_fresh: Option<Duration>,
    /// Fresh for [`IMMUTABLE_LIFETIME`] and answered without revalidation
    /// even when the client asks for one (`no-cache`, `max-age=0`), as
    /// browsers treat `Cache-Control: immutable`.
    pub immutable: bool,
    /// A fresh response is answered even when the client asks for
    /// revalidation (Squid's `ignore-reload`): for index files a client
    /// reloads on every run (pip sends `max-age=0`) and whose freshness the
    /// rule keeps short, so the copy is never older than that.
    pub ignore_reload: bool,
}

impl FreshnessRule {
    /// Whether the rule gives freshness to a response that has none of its
    /// own, and so makes it worth storing.
    pub fn gives_freshness(&self) -> bool {
        self.immutable
            || self.fresh.is_some_and(|d| !d.is_zero())
            || self.min_fresh.is_some_and(|d| !d.is_zero())
    }

    /// The freshness lifetime of a response of `status` with `headers`
    /// under this rule, when the rule changes what the origin's own
    /// (`origin_lifetime`, RFC 9111 §4.2.1) would be; `None` when it does
    /// not apply: a status other than 200 or 203 (an error or a redirect is
    /// not the file the rule is about), or `no-cache` from the origin.
    pub fn lifetime(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        origin_lifetime: Duration,
    ) -> Option<Duration> {
        if status != StatusCode::OK && status != StatusCode::NON_AUTHORITATIVE_INFORMATION {
            return None;
        }
        let cc = directives(headers);
        if cc.contains_key("no-cache") {
            return None;
        }
        if self.immutable {
            return Some(IMMUTABLE_LIFETIME);
        }
        let explicit = cc.contains_key("max-age")
            || cc.contains_key("s-maxage")
            || headers.contains_key(header::EXPIRES);
        let mut lifetime = match self.fresh {
            Some(fresh) if !explicit => fresh,
            _ => origin_lifetime,
        };
        if let Some(min) = self.min_fresh {
            lifetime = lifetime.max(min);
        }
        if let Some(max) = self.max_fresh {
            lifetime = lifetime.min(max);
        }
        let decided = lifetime != origin_lifetime || (!explicit && self.fresh.is_some());
        decided.then_some(lifetime)
    }

    /// Whether a fresh response under this rule is answered even when the
    /// client asks for revalidation.
    pub fn ignores_client_revalidation(&self) -> bool {
        self.immutable || self.ignore_reload
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_rule_fills_in_freshness_the_origin_did_not_give_and_bounds_it() {
        let fresh = FreshnessRule {
            name: "r".into(),
            fresh: Some(HOUR),
            ..Default::default()
        };
        let none = headers(&[]);
        assert_eq!(
            fresh.lifetime(StatusCode::OK, &none, Duration::ZERO),
            Some(HOUR)
        );
        // The origin's own freshness stands.
        let explicit = headers(&[("cache-control", "max-age=60")]);
        let sixty = Duration::from_secs(60);
        assert_eq!(fresh.lifetime(StatusCode::OK, &explicit, sixty), None);
        let floor = FreshnessRule {
            min_fresh: Some(HOUR),
            ..Default::default()
        };
        assert_eq!(floor.lifetime(StatusCode::OK, &explicit, sixty), Some(HOUR));
        let ceiling = FreshnessRule {
            max_fresh: Some(Duration::from_secs(10)),
            ..Default::default()
        };
        assert_eq!(
            ceiling.lifetime(StatusCode::OK, &explicit, sixty),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            ceiling.lifetime(StatusCode::OK, &none, Duration::ZERO),
            None
        );
    }

    #[test]
    fn immutable_is_long_but_not_for_errors_redirects_or_no_cache() {
        let rule = FreshnessRule {
            immutable: true,
            ..Default::default()
        };
        let none = headers(&[]);
        assert_eq!(
            rule.lifetime(StatusCode::OK, &none, Duration::ZERO),
            Some(IMMUTABLE_LIFETIME)
        );
        for status in [
            StatusCode::NOT_FOUND,
            StatusCode::FOUND,
            StatusCode::INTERNAL_SERVER_ERROR,
        ] {
            assert_eq!(
                rule.lifetime(status, &none, Duration::ZERO),
                None,
                "{status}"
            );
        }
        let no_cache = headers(&[("cache-control", "no-cache")]);
        assert_eq!(
            rule.lifetime(StatusCode::OK, &no_cache, Duration::ZERO),
            None
        );
        assert!(rule.gives_freshness() && rule.ignores_client_revalidation());
        assert!(!FreshnessRule::default().gives_freshness());
    }
}
