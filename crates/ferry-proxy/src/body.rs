//! The body type of every response the proxy sends, the two simple bodies
//! the proxy writes itself, and a client's request body watched for its
//! own failures on the way upstream.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Empty, Full};

/// Errors a body can end with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type of every response the proxy sends.
pub type ProxyBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty() -> ProxyBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// A client's request body on its way upstream that remembers whether it
/// failed (a malformed chunk, a cut-off upload): the fault is then the
/// client's, whatever error the upstream exchange reports for it.
pub struct WatchedBody<B> {
    inner: B,
    failure: Arc<OnceLock<String>>,
}

/// What a [`WatchedBody`] saw: the client body's failure, if any.
#[derive(Clone, Default)]
pub struct BodyFailure(Arc<OnceLock<String>>);

impl BodyFailure {
    /// The body's error, when it failed.
    pub fn get(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }
}

/// Boxes a client's body as the upstream client takes it, and the handle
/// that says afterwards whether it failed.
pub fn watch_client_body<B>(inner: B) -> (ProxyBody, BodyFailure)
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let failure = BodyFailure::default();
    let body = WatchedBody {
        inner,
        failure: failure.0.clone(),
    };
    (body.boxed_unsync(), failure)
}

impl<B> Body for WatchedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Err(e))) => {
                let e: BoxError = e.into();
                let _ = self.failure.set(e.to_string());
                Poll::Ready(Some(Err(e)))
            }
            other => other.map(|frame| frame.map(|r| r.map_err(Into::into))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
