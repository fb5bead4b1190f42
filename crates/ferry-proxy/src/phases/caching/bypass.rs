//! Requests the cache does not answer (other methods, a GET or HEAD with a
//! body, and everything when the proxy runs without a cache) go straight to
//! the origin with their body. What the cache still does for them: a
//! successful unsafe request invalidates what is stored for its target
//! (RFC 9111 §4.4), and a POST response that names its target as its
//! `Content-Location` may be stored for later GETs.

use std::net::IpAddr;
use std::sync::Arc;

use ferry_cache::{Cache, CacheKey, policy};
use http::{Method, Request, Response, request};
use hyper::body::Incoming;

use super::store_sink::{StoreSink, relay_storing};
use crate::body::{ProxyBody, watch_client_body};
use crate::error::{ProxyError, RequestError};
use crate::groups::rate::Meter;
use crate::phases::forward::{self, Fetched};
use crate::state::ProxyState;

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
    let (parts, body) = req.into_parts();
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
