//! What every cache phase of one request works with ([`CacheRequest`]) and
//! what each gives back ([`Served`]): the response, what the cache did, and
//! the operator's rule that decided the freshness, if one did.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ferry_cache::{Cache, CacheKey, FreshnessRule, Hit, policy};
use http::{Response, request, response};
use http_body_util::BodyExt;
use std::net::IpAddr;

use crate::body::ProxyBody;
use crate::cache_rules::CacheRule;
use crate::error::ProxyError;
use crate::outcome::CacheOutcome;
use crate::state::ProxyState;

/// What every cache phase of one request needs.
#[derive(Clone, Copy)]
pub struct CacheRequest<'a> {
    pub state: &'a Arc<ProxyState>,
    pub cache: &'a Cache,
    /// The request's cache key, built once by the exchange.
    pub key: &'a CacheKey,
    pub client: IpAddr,
    pub host: &'a str,
    /// The operator's cache rule for this request, if one matched.
    pub rule: Option<&'a CacheRule>,
}

impl CacheRequest<'_> {
    pub fn freshness(&self) -> Option<&FreshnessRule> {
        self.rule.map(|r| &r.freshness)
    }

    /// The rule's name when it decides the freshness of `head` (a response
    /// just fetched).
    pub fn rule_deciding(&self, head: &response::Parts) -> Option<Arc<str>> {
        let rule = self.rule?;
        let origin = policy::freshness_lifetime(
            head.status,
            &head.headers,
            SystemTime::now(),
            Duration::from_secs(self.state.config.cache.heuristic_max),
        );
        rule.freshness
            .lifetime(head.status, &head.headers, origin)
            .map(|_| rule.name.clone())
    }
}

/// The result of a phase: the response (or why there is none), what the
/// cache did, and the operator's rule that decided the freshness of what
/// was served or stored, if one did.
pub struct Served {
    pub result: Result<Response<ProxyBody>, ProxyError>,
    pub outcome: CacheOutcome,
    pub rule: Option<Arc<str>>,
}

impl Served {
    pub fn new(result: Result<Response<ProxyBody>, ProxyError>, outcome: CacheOutcome) -> Served {
        Served {
            result,
            outcome,
            rule: None,
        }
    }

    pub fn by_rule(mut self, rule: Option<Arc<str>>) -> Served {
        self.rule = rule;
        self
    }

    pub fn hit(
        cx: CacheRequest<'_>,
        hit: Hit,
        parts: &request::Parts,
        outcome: CacheOutcome,
    ) -> Served {
        let rule = hit.rule().map(Arc::from);
        Served::new(Ok(respond_from(cx.state, hit, parts)), outcome).by_rule(rule)
    }
}

/// The stored response as this request gets it, marked as passing through us.
pub fn respond_from(state: &ProxyState, hit: Hit, parts: &request::Parts) -> Response<ProxyBody> {
    let resp = hit.into_response(parts);
    let (mut head, body) = resp.into_parts();
    state.add_via(&mut head.headers, http::Version::HTTP_11);
    Response::from_parts(head, body.map_err(Into::into).boxed_unsync())
}
