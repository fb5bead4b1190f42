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

use std::time::SystemTime;

use ferry_cache::{Cache, CacheKey};
use ferry_cache::{Collapse, Hit, LeaderGuard, Lookup, Stale, policy};
use http::header;
use http::{Response, StatusCode, request};
use http_body_util::BodyExt;

use super::ranges;
use super::served::{CacheRequest, Served, respond_from};
use super::store_sink::store_and_relay;
use crate::body::ProxyBody;
use crate::error::{ProxyError, RequestError};
use crate::outcome::{CacheOutcome, Fwd, StaleServed};
use crate::pages;
use crate::phases::forward;
use crate::upstream::{UpstreamError, no_body};

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
    if parts.method != http::Method::GET {
        return fetch_and_store(cx, parts, None, fwd).await;
    }
    if parts.headers.contains_key(header::RANGE) {
        // Boxed: a range's miss may fetch the whole object and then cut
        // it, a future larger than the plain miss every other request takes.
        return Box::pin(ranges::range_miss(cx, parts, fwd)).await;
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
