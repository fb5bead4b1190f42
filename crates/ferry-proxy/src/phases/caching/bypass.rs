//! Requests the cache does not answer (other methods, a GET or HEAD with a
//! body, and everything when the proxy runs without a cache) go straight to
//! the origin with their body. What the cache still does for them: a
//! successful unsafe request invalidates what is stored for its target
//! (RFC 9111 §4.4), and a POST response that names its target as its
//! `Content-Location` may be stored for later GETs.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use ferry_cache::{Cache, CacheKey, policy};
use http::{Method, Request, Response, request};
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::store_sink::{StoreSink, relay_storing};
use crate::body::{ProxyBody, watch_client_body};
use crate::error::{ProxyError, RequestError};
use crate::groups::rate::Meter;
use crate::phases::forward::{self, Fetched};
use crate::state::ProxyState;
use crate::upstream::{UpstreamBody, is_idempotent, whole_body};

/// Methods the cache does not answer (and everything, without a cache):
/// straight to the origin with the client's body. A successful unsafe
/// request invalidates what the cache holds for its target; a POST response
/// that names its target as its `Content-Location` may replace it.
pub async fn forward_uncached(
    state: &Arc<ProxyState>,
    client: IpAddr,
    req: Request<Incoming>,
    host: &str,
    cache: Option<(&Cache, &CacheKey)>,
    upload: &Meter,
) -> Result<Response<ProxyBody>, ProxyError> {
    let (mut parts, body) = req.into_parts();
    // Kept for invalidation: a successful unsafe request makes stored copies stale.
    let target = cache.filter(|_| !parts.method.is_safe()).map(|_| {
        let mut target = Request::new(()).into_parts().0;
        target.method = parts.method.clone();
        target.uri = parts.uri.clone();
        target
    });
    // A POST's response may be stored for later GETs; the head it would be
    // stored under.
    let post_as_get = cache.filter(|_| parts.method == Method::POST).map(|_| {
        let mut get = Request::new(()).into_parts().0;
        get.uri = parts.uri.clone();
        get.headers = parts.headers.clone();
        get
    });
    let (body, client_fault) = if upload.is_idle() {
        watch_client_body(body)
    } else {
        watch_client_body(upload.uploading(body))
    };
    let body = if replayable(&parts.method, &body) {
        match read_whole(state, body).await {
            Ok(bytes) => whole_body(&mut parts, bytes),
            Err(detail) => return Err(RequestError::BadBody { detail }.into()),
        }
    } else {
        body
    };
    let fetched = match forward::fetch(state, client, parts, body).await {
        Ok(fetched) => fetched,
        // The client's own body broke the exchange: its fault, not the origin's.
        Err(ProxyError::Upstream(_)) if client_fault.get().is_some() => {
            let detail = client_fault.get().unwrap_or_default().to_string();
            return Err(RequestError::BadBody { detail }.into());
        }
        Err(e) => return Err(e),
    };
    if let (Some((cache, key)), Some(target)) = (cache, &target) {
        cache.invalidate(key, target, &fetched.head).await;
    }
    if let (Some((cache, key)), Some(get)) = (cache, &post_as_get) {
        return Ok(relay_post_response(state, cache, key, host, get, fetched).await);
    }
    Ok(forward::relay(state, host, fetched, None))
}

/// Request bodies up to this size, sent with an idempotent method, are read
/// whole before the request goes upstream, so that the request can be sent
/// again on a new connection when a pooled one was closed under it. Larger
/// bodies, bodies of unknown length and other methods stream through.
const REPLAYABLE_BODY: u64 = 64 * 1024;

fn replayable(method: &Method, body: &UpstreamBody) -> bool {
    is_idempotent(method)
        && !body.is_end_stream()
        && body
            .size_hint()
            .exact()
            .is_some_and(|len| len <= REPLAYABLE_BODY)
}

/// The client's body, bounded by the time the origin would have had to
/// answer (the same bound the streamed body has while it is sent).
async fn read_whole(state: &ProxyState, body: UpstreamBody) -> Result<Bytes, String> {
    let wait = state.upstream.response_timeout();
    match tokio::time::timeout(wait, body.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "the request body did not arrive within {} s",
            wait.as_secs()
        )),
    }
}

/// Relays the response to a POST, storing it for later GETs of the same URL
/// when it says it is that resource's current representation (see
/// [`policy::post_response_reusable`]). `get` is the POST's request head as
/// a GET.
async fn relay_post_response(
    state: &ProxyState,
    cache: &Cache,
    key: &CacheKey,
    host: &str,
    get: &request::Parts,
    fetched: Fetched,
) -> Response<ProxyBody> {
    let mut sink = None;
    if policy::post_response_reusable(&get.uri, &fetched.head) {
        let stored = cache
            .begin_store(
                key,
                get,
                &fetched.head,
                fetched.request_time,
                fetched.response_time,
            )
            .await;
        if let Ok(writer) = stored {
            sink = Some(StoreSink::boxed(writer, None));
        }
    }
    relay_storing(state, host, fetched, sink).await
}
