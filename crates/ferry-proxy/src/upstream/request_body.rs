//! What the proxy sends upstream as a request body: the client's body
//! streamed, an empty one, or one read whole first (kept so the request can
//! be repeated on a new connection).

use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;

use crate::body::BoxError;

/// What the proxy sends upstream: the client's streamed body, or an empty one.
pub type UpstreamBody = UnsyncBoxBody<Bytes, BoxError>;

/// An empty request body (revalidations, GETs whose body is ignored).
pub fn no_body() -> UpstreamBody {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A request body read whole before the request went upstream, kept so the
/// request can be sent once more when a pooled connection turns out to have
/// been closed by the origin (see `super::client::Upstream::send`).
#[derive(Clone)]
pub(super) struct ReplayBody(pub(super) Bytes);

/// A body already read whole: sent as it is, and kept in the request's
/// extensions so an idempotent request can be repeated on a new connection.
pub fn whole_body(parts: &mut http::request::Parts, bytes: Bytes) -> UpstreamBody {
    parts.extensions.insert(ReplayBody(bytes.clone()));
    full_body(bytes)
}

pub(super) fn full_body(bytes: Bytes) -> UpstreamBody {
    http_body_util::Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}
