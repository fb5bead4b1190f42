//! Forwarding to an origin: [`fetch`] rewrites the request as the origin
//! should see it, waits for a fetch slot from the FIFO queue and sends it;
//! [`relay`] marks the response head as passing through this proxy and
//! relays its body while the slot is held, optionally teeing it into a
//! [`FrameSink`] (the cache's store).

use std::net::IpAddr;
use std::time::SystemTime;

use http::header;
use http::{Request, Response, Uri, request, response};
use http_body_util::BodyExt;

use crate::access::{canonical_client, is_local_client};
use crate::body::ProxyBody;
use crate::error::ProxyError;
use crate::headers::{add_forwarded, strip_hop_by_hop, strip_own_headers};
use crate::state::ProxyState;
use crate::upstream::{FrameSink, OriginBody, Relay, Slot, UpstreamBody};

/// An upstream response head, with the slot that must be held until its body
/// has been relayed.
pub struct Fetched {
    /// Hop-by-hop headers already removed.
    pub head: response::Parts,
    pub body: OriginBody,
    pub slot: Slot,
    pub request_time: SystemTime,
    pub response_time: SystemTime,
}

/// Waits for a fetch slot, then sends the request upstream and waits for
/// the response head.
pub async fn fetch(
    state: &ProxyState,
    client: IpAddr,
    parts: request::Parts,
    body: UpstreamBody,
) -> Result<Fetched, ProxyError> {
    let req = upstream_request(state, client, parts, body);
    let slot = state.admission.acquire(canonical_client(client)).await?;
    let request_time = SystemTime::now();
    let sent = std::time::Instant::now();
    let resp = state.upstream.send(req, is_local_client(client)).await?;
    state.metrics.origin_fetch.observe(sent.elapsed());
    let (mut head, body) = resp.into_parts();
    strip_hop_by_hop(&mut head.headers);
    strip_own_headers(&mut head.headers);
    Ok(Fetched {
        head,
        body,
        slot,
        request_time,
        response_time: SystemTime::now(),
    })
}

/// The response for the client: `Via` added, the body relayed while holding
/// the slot, and copied into `sink` if given.
pub fn relay(
    state: &ProxyState,
    host: &str,
    fetched: Fetched,
    sink: Option<Box<dyn FrameSink>>,
) -> Response<ProxyBody> {
    let Fetched {
        mut head,
        body,
        slot,
        ..
    } = fetched;
    state.add_via(&mut head.headers, head.version);
    head.version = http::Version::HTTP_11;
    let relay = Relay::new(
        body,
        Some(slot),
        state.upstream.response_timeout(),
        host.to_string(),
    )
    .with_min_rate(state.config.min_rate())
    .with_sink(sink);
    Response::from_parts(head, relay.boxed_unsync())
}

/// The request as the origin will see it: hop-by-hop and proxy headers gone,
/// `Host` taken from the target URI (RFC 9112 §3.2.2), `Via` added, and the
/// client's address only if the config asks for it.
///
/// The framing is always Ferry's own: the client's `Content-Length` and
/// `Transfer-Encoding` never travel, and hyper frames the body actually sent
/// (its exact length, chunked when unknown, nothing for an empty GET). A
/// client's framing that does not match what is sent would let the origin
/// read the next pooled request as a body (request desync).
fn upstream_request(
    state: &ProxyState,
    client: IpAddr,
    mut parts: request::Parts,
    body: UpstreamBody,
) -> Request<UpstreamBody> {
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::TRANSFER_ENCODING);
    parts.headers.remove(header::HOST);
    // 100-continue was already answered to the client by the server side.
    parts.headers.remove(header::EXPECT);
    state.add_via(&mut parts.headers, parts.version);
    add_forwarded(&mut parts.headers, state.config.forwarded_header, client);
    parts.version = http::Version::HTTP_11;
    parts.uri = normalize_target(&parts.uri);
    Request::from_parts(parts, body)
}

/// An absolute-form target without a path gets `/`.
fn normalize_target(uri: &Uri) -> Uri {
    if uri.path().is_empty() {
        let mut parts = uri.clone().into_parts();
        parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
        Uri::from_parts(parts).unwrap_or_else(|_| uri.clone())
    } else {
        uri.clone()
    }
}
