//! The cache's phases of a GET or HEAD: look it up; answer a fresh hit
//! without a fetch slot; revalidate a stale copy (in the background when
//! `stale-while-revalidate` allows, falling back to it when `stale-if-error`
//! allows or the origin cannot be reached, unless the copy forbids stale
//! use); collapse concurrent misses into one origin fetch; and store what
//! the origin sends while it streams to the client. Every phase reports what
//! it did as a [`CacheOutcome`].
//!
//! Misses and revalidations that bring a new response share one path,
//! [`store_and_relay`]; the tee into the cache is `store_sink`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ferry_cache::{
    Cache, CacheKey, Collapse, FreshnessRule, Hit, LeaderGuard, Lookup, Stale, policy,
};
use http::header;
use http::{Response, StatusCode, request, response};
use http_body_util::BodyExt;

use super::store_sink::{StoreSink, relay_storing};
use crate::body::ProxyBody;
use crate::cache_rules::CacheRule;
use crate::error::{ProxyError, RequestError};
use crate::outcome::{CacheOutcome, Fwd, StaleServed};
use crate::pages;
use crate::phases::forward::{self, Fetched};
use crate::state::ProxyState;
use crate::upstream::{UpstreamError, no_body};

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
    fn freshness(&self) -> Option<&FreshnessRule> {
        self.rule.map(|r| &r.freshness)
    }

    /// The rule's name when it decides the freshness of `head` (a response
    /// just fetched).
    fn rule_deciding(&self, head: &response::Parts) -> Option<Arc<str>> {
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
    fn new(result: Result<Response<ProxyBody>, ProxyError>, outcome: CacheOutcome) -> Served {
        Served {
            result,
            outcome,
            rule: None,
        }
    }

    fn by_rule(mut self, rule: Option<Arc<str>>) -> Served {
        self.rule = rule;
        self
    }

    fn hit(
        cx: CacheRequest<'_>,
        hit: Hit,
        parts: &request::Parts,
        outcome: CacheOutcome,
    ) -> Served {
        let rule = hit.rule().map(Arc::from);
        Served::new(Ok(respond_from(cx.state, hit, parts)), outcome).by_rule(rule)
    }
}

/// Answers a GET or HEAD through the cache.
///
/// The paths that go upstream are boxed: hyper keeps one request future per
/// connection for the connection's life, and the hit path should not carry
/// the size of the miss path in every idle connection (nor allocate it per hit).
pub async fn answer(cx: CacheRequest<'_>, parts: request::Parts) -> Served {
    match cx.cache.lookup_ruled(&parts, cx.key, cx.freshness()).await {
        Lookup::Fresh(hit) => {
            let ttl = hit.ttl(SystemTime::now());
            Served::hit(cx, hit, &parts, CacheOutcome::Hit { ttl })
        }
        Lookup::OnlyIfCachedMiss => Served::new(
            Err(RequestError::OnlyIfCached.into()),
            CacheOutcome::OnlyIfCachedMiss,
        ),
        Lookup::Bypass => Box::pin(fetch_and_store(cx, parts, None, Fwd::Bypass)).await,
        Lookup::Stale(stale) if stale.rules.while_revalidate => {
            let ttl = stale.hit.ttl(SystemTime::now());
            spawn_revalidation(cx, parts.clone());
            let outcome = CacheOutcome::Stale {
                ttl,
                served: StaleServed::WhileRevalidate,
            };
            Served::hit(cx, stale.hit, &parts, outcome)
        }
        Lookup::Stale(stale) => Box::pin(revalidate(cx, parts, stale)).await,
        Lookup::Miss(kind) => Box::pin(miss(cx, parts, kind.into())).await,
    }
}

/// Nothing usable is stored: one request fetches (the leader), the others
/// for the same object wait for its result (collapsed forwarding). Only a
/// plain GET can lead: its response is the complete object every follower
/// needs. A follower whose wait ends without the object joins again (and
/// follows whoever leads then) a few times before it fetches on its own, so
/// followers behind a slow or failed leader never all hit the origin at once.
async fn miss(cx: CacheRequest<'_>, parts: request::Parts, fwd: Fwd) -> Served {
    let plain_get = parts.method == http::Method::GET && !parts.headers.contains_key(header::RANGE);
    if !plain_get {
        return fetch_and_store(cx, parts, None, fwd).await;
    }
    for _ in 0..COLLAPSE_ROUNDS {
        match cx.cache.collapse(cx.key) {
            Collapse::Pass => return fetch_and_store(cx, parts, None, fwd).await,
            Collapse::Leader(guard) => return fetch_and_store(cx, parts, Some(guard), fwd).await,
            Collapse::Follower(follower) => {
                follower.wait(cx.cache.collapse_wait()).await;
                let found = cx.cache.lookup_ruled(&parts, cx.key, cx.freshness()).await;
                if let Lookup::Fresh(hit) = found {
                    let ttl = hit.ttl(SystemTime::now());
                    return Served::hit(cx, hit, &parts, CacheOutcome::Collapsed { ttl });
                }
            }
        }
    }
    fetch_and_store(cx, parts, None, fwd).await
}

/// How many times a follower joins again before fetching on its own.
const COLLAPSE_ROUNDS: usize = 3;

/// Fetches from the origin, then stores the response while relaying it.
/// `guard` is the collapsed-forwarding lead, released when the store
/// completes (or right away if nothing is stored).
async fn fetch_and_store(
    cx: CacheRequest<'_>,
    parts: request::Parts,
    guard: Option<LeaderGuard>,
    fwd: Fwd,
) -> Served {
    let mut upstream = parts.clone();
    if guard.is_some() {
        // The stored object must be the whole representation, whatever this
        // client's own conditionals (its 200 still satisfies them).
        upstream.headers.remove(header::IF_NONE_MATCH);
        upstream.headers.remove(header::IF_MODIFIED_SINCE);
    }
    match forward::fetch(cx.state, cx.client, upstream, no_body()).await {
        Ok(fetched) => store_and_relay(cx, &parts, fetched, guard, fwd, None).await,
        Err(e) => Served::new(Err(e), CacheOutcome::FetchFailed { fwd }),
    }
}

/// The one relay-and-store path, for misses and for revalidations that
/// brought a new representation: the response streams to the client and,
/// if the rules allow, into the cache, replacing what was stored. When the
/// new response forbids storing, the stale copy it `replaces` is removed.
async fn store_and_relay(
    cx: CacheRequest<'_>,
    parts: &request::Parts,
    fetched: Fetched,
    guard: Option<LeaderGuard>,
    fwd: Fwd,
    replaces: Option<&Hit>,
) -> Served {
    let fwd_status = fetched.head.status.as_u16();
    let times = (fetched.request_time, fetched.response_time);
    let stored = cx
        .cache
        .begin_store_ruled(cx.key, parts, &fetched.head, times, cx.freshness())
        .await;
    let mut rule = None;
    let (sink, outcome) = match stored {
        Ok(writer) => {
            rule = cx.rule_deciding(&fetched.head);
            (
                Some(StoreSink::boxed(writer, guard)),
                CacheOutcome::Stored { fwd, fwd_status },
            )
        }
        Err(reason) => {
            if let Some(stale) = replaces.filter(|_| reason.is_about_the_response()) {
                cx.cache.evict(stale).await;
            }
            (
                None,
                CacheOutcome::NotStored {
                    fwd,
                    fwd_status,
                    reason,
                },
            )
        }
    };
    let resp = relay_storing(cx.state, cx.host, fetched, sink).await;
    Served::new(Ok(resp), outcome).by_rule(rule)
}

/// Revalidates a stale stored response before answering (RFC 9111 §4.3).
async fn revalidate(cx: CacheRequest<'_>, parts: request::Parts, stale: Stale) -> Served {
    let mut conditional = parts.clone();
    conditional.method = http::Method::GET;
    for name in [
        header::IF_NONE_MATCH,
        header::IF_MODIFIED_SINCE,
        header::IF_RANGE,
        header::RANGE,
    ] {
        conditional.headers.remove(name);
    }
    for (name, value) in stale.validators() {
        conditional.headers.insert(name, value);
    }
    let serve_stale = |hit: Hit, fwd_status: Option<u16>| {
        let outcome = CacheOutcome::Stale {
            ttl: hit.ttl(SystemTime::now()),
            served: StaleServed::IfError { fwd_status },
        };
        Served::hit(cx, hit, &parts, outcome)
    };
    let fetched = match forward::fetch(cx.state, cx.client, conditional, no_body()).await {
        Ok(fetched) => fetched,
        // The origin cannot be reached: a disconnected cache may serve its
        // stale copy (§4.2.4) unless the copy forbids it, then it says 504.
        Err(ProxyError::Upstream(_)) if stale.rules.if_error || stale.rules.if_unreachable => {
            return serve_stale(stale.hit, None);
        }
        Err(ProxyError::Upstream(cause)) => {
            let e = ProxyError::Upstream(UpstreamError::CannotRevalidate(Box::new(cause)));
            return Served::new(Err(e), CacheOutcome::FetchFailed { fwd: Fwd::Stale });
        }
        Err(e) => return Served::new(Err(e), CacheOutcome::FetchFailed { fwd: Fwd::Stale }),
    };
    let code = fetched.head.status;
    if code == StatusCode::NOT_MODIFIED {
        let head = fetched.head;
        // Nothing more to read; the slot frees now.
        drop(fetched.slot);
        let refreshed = cx
            .cache
            .refresh(stale.hit, cx.key, &parts, &head, SystemTime::now())
            .await;
        return match refreshed {
            Ok(hit) => {
                let mut resp = respond_from(cx.state, hit, &parts);
                // This client's own headers from the 304 (its new session
                // cookie, say) go to it alone: they were not stored.
                for name in &policy::PER_USER_HEADERS {
                    for value in head.headers.get_all(name) {
                        resp.headers_mut().append(name.clone(), value.clone());
                    }
                }
                Served::new(Ok(resp), CacheOutcome::Revalidated)
            }
            // The 304 forbids keeping the stored copy (it is gone now), or
            // the copy could not be rewritten: fetch the response whole.
            Err(_) => fetch_and_store(cx, parts, None, Fwd::Stale).await,
        };
    }
    if code.is_server_error() && stale.rules.if_error {
        return serve_stale(stale.hit, Some(code.as_u16()));
    }
    store_and_relay(cx, &parts, fetched, None, Fwd::Stale, Some(&stale.hit)).await
}

/// `stale-while-revalidate`: refreshes the stored response off the request
/// path, one background revalidation per URL at a time.
fn spawn_revalidation(cx: CacheRequest<'_>, mut parts: request::Parts) {
    parts.method = http::Method::GET;
    parts.headers.remove(header::RANGE);
    let state = cx.state.clone();
    let cache = cx.cache.clone();
    let key = cx.key.clone();
    let host = cx.host.to_string();
    let client = cx.client;
    let rule = cx.rule.cloned();
    tokio::spawn(async move {
        let cx = CacheRequest {
            state: &state,
            cache: &cache,
            key: &key,
            client,
            host: &host,
            rule: rule.as_ref(),
        };
        let Lookup::Stale(stale) = cache.lookup_ruled(&parts, &key, cx.freshness()).await else {
            return;
        };
        let Collapse::Leader(_guard) = cache.collapse(&key) else {
            return;
        };
        let Served {
            result, outcome, ..
        } = revalidate(cx, parts, stale).await;
        if let Ok(resp) = result {
            // Drain the body so a new representation is stored completely.
            let _ = resp.into_body().collect().await;
        }
        tracing::debug!(
            host,
            cache_status = outcome
                .cache_status(&state.config.via_pseudonym, None)
                .unwrap_or_default(),
            "background revalidation done"
        );
    });
}

/// `PURGE <url>` removes what is stored under the request's key.
pub async fn purge(cache: &Cache, key: &CacheKey) -> Result<Response<ProxyBody>, ProxyError> {
    if cache.purge(key).await {
        Ok(pages::text(StatusCode::OK, "purged\n"))
    } else {
        Err(RequestError::NotCached.into())
    }
}

/// The stored response as this request gets it, marked as passing through us.
fn respond_from(state: &ProxyState, hit: Hit, parts: &request::Parts) -> Response<ProxyBody> {
    let resp = hit.into_response(parts);
    let (mut head, body) = resp.into_parts();
    state.add_via(&mut head.headers, http::Version::HTTP_11);
    Response::from_parts(head, body.map_err(Into::into).boxed_unsync())
}
