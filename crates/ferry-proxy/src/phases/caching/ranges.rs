//! A `Range` request for an object that is not stored: resumed downloads,
//! download managers and segmented fetchers would otherwise each fetch (and
//! the cache could never store) their own piece. Instead the request leads
//! (or, through collapsed forwarding, joins) one fetch of the whole object,
//! is answered its range as the bytes stream past, and the object is
//! stored, so later ranges and whole downloads are hits (what Squid's
//! `range_offset_limit` and nginx's slice module are for).
//!
//! The whole object is fetched only when the origin says how long it is
//! and that fits `max_object_size`: otherwise the range goes to the origin
//! as asked and nothing is stored. An object whose length is not known
//! until its end is sent whole (RFC 9110 §14.2 lets a server ignore a
//! range) and stored. After the client has its range, or if it goes away,
//! the rest of the object is still read and stored, in the background.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use ferry_cache::conditional::{RangeSpec, parse_range, range_applies};
use ferry_cache::{Collapse, Lookup};
use http::header::{self, HeaderValue};
use http::{Response, StatusCode, request};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;

use super::served::{CacheRequest, Served};
use super::store_sink::store_and_relay;
use crate::body::{BoxError, ProxyBody};
use crate::outcome::{CacheOutcome, Fwd};
use crate::phases::forward;
use crate::upstream::no_body;

/// How many times a follower joins again before fetching on its own.
const COLLAPSE_ROUNDS: usize = 3;

/// Answers a GET with `Range` for an object not stored.
pub async fn range_miss(cx: CacheRequest<'_>, parts: request::Parts, fwd: Fwd) -> Served {
    for _ in 0..COLLAPSE_ROUNDS {
        match cx.cache.collapse(cx.key) {
            Collapse::Pass => break,
            Collapse::Leader(guard) => return whole_then_range(cx, parts, guard, fwd).await,
            Collapse::Follower(follower) => {
                follower.wait(cx.cache.collapse_wait()).await;
                let found = cx.cache.lookup_ruled(&parts, cx.key, cx.freshness()).await;
                if let Lookup::Fresh(hit) = found {
                    let ttl = hit.ttl(std::time::SystemTime::now());
                    return Served::hit(cx, hit, &parts, CacheOutcome::Collapsed { ttl });
                }
            }
        }
    }
    as_asked(cx, parts, fwd).await
}

/// The range from the origin, as the client asked for it (stored only if
/// it is a part the cache can keep).
async fn as_asked(cx: CacheRequest<'_>, parts: request::Parts, fwd: Fwd) -> Served {
    match forward::fetch(cx.state, cx.client, parts.clone(), no_body()).await {
        Ok(fetched) => store_and_relay(cx, &parts, fetched, None, fwd, None).await,
        Err(e) => Served::new(Err(e), CacheOutcome::FetchFailed { fwd }),
    }
}

/// Leads the fetch of the whole object and answers this request's range
/// from it.
async fn whole_then_range(
    cx: CacheRequest<'_>,
    parts: request::Parts,
    guard: ferry_cache::LeaderGuard,
    fwd: Fwd,
) -> Served {
    let mut whole = parts.clone();
    for name in [
        header::RANGE,
        header::IF_RANGE,
        header::IF_NONE_MATCH,
        header::IF_MODIFIED_SINCE,
    ] {
        whole.headers.remove(name);
    }
    let fetched = match forward::fetch(cx.state, cx.client, whole.clone(), no_body()).await {
        Ok(fetched) => fetched,
        Err(e) => return Served::new(Err(e), CacheOutcome::FetchFailed { fwd }),
    };
    let length = fetched
        .head
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let limit = cx.state.config.cache.max_object_size.as_u64();
    if fetched.head.status == StatusCode::OK && length.is_some_and(|n| n > limit) {
        // Too big to keep: the origin sends only the range asked for.
        drop(fetched);
        drop(guard);
        return as_asked(cx, parts, fwd).await;
    }
    let served = store_and_relay(cx, &whole, fetched, Some(guard), fwd, None).await;
    let Served {
        result,
        outcome,
        rule,
    } = served;
    let result = match (result, length) {
        (Ok(resp), Some(length)) if resp.status() == StatusCode::OK => {
            Ok(range_of_whole(resp, &parts, length))
        }
        (other, _) => other,
    };
    Served::new(result, outcome).by_rule(rule)
}

/// The client's range of a whole `200` of `length` bytes as it streams:
/// `206` (or `416`), or the whole `200` when the range does not apply
/// (`If-Range` no longer matches, or not a single byte range).
fn range_of_whole(
    resp: Response<ProxyBody>,
    request: &request::Parts,
    length: u64,
) -> Response<ProxyBody> {
    if !range_applies(&request.headers, resp.headers()) {
        return resp;
    }
    let spec = request
        .headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map_or(RangeSpec::Ignore, |r| parse_range(r, length));
    let (status, first, count, content_range) = match spec {
        RangeSpec::Ignore => return resp,
        RangeSpec::Satisfiable(first, last) => (
            StatusCode::PARTIAL_CONTENT,
            first,
            last - first + 1,
            format!("bytes {first}-{last}/{length}"),
        ),
        RangeSpec::Unsatisfiable => (
            StatusCode::RANGE_NOT_SATISFIABLE,
            0,
            0,
            format!("bytes */{length}"),
        ),
    };
    let (mut head, body) = resp.into_parts();
    head.status = status;
    head.headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    if let Ok(v) = HeaderValue::from_str(&content_range) {
        head.headers.insert(header::CONTENT_RANGE, v);
    }
    let slice = RangeOfWhole {
        whole: Some(body),
        skip: first,
        left: count,
    };
    Response::from_parts(head, slice.boxed_unsync())
}

/// A range of a whole body that streams into the cache: the bytes before
/// the range are skipped, those in it sent, and the rest (after the range
/// is sent, or when the client goes away) read in the background so the
/// whole object is stored.
struct RangeOfWhole {
    whole: Option<ProxyBody>,
    skip: u64,
    left: u64,
}

impl Body for RangeOfWhole {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        loop {
            if self.left == 0 {
                finish_in_background(self.whole.take());
                return Poll::Ready(None);
            }
            let Some(whole) = self.whole.as_mut() else {
                return Poll::Ready(None);
            };
            let frame = match ready!(Pin::new(whole).poll_frame(cx)) {
                Some(Ok(frame)) => frame,
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => {
                    self.whole = None;
                    return Poll::Ready(None);
                }
            };
            let Ok(mut data) = frame.into_data() else {
                continue;
            };
            let skipped = self.skip.min(data.len() as u64);
            self.skip -= skipped;
            let _ = data.split_to(skipped as usize);
            let take = self.left.min(data.len() as u64);
            if take == 0 {
                continue;
            }
            self.left -= take;
            data.truncate(take as usize);
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

impl Drop for RangeOfWhole {
    fn drop(&mut self) {
        finish_in_background(self.whole.take());
    }
}

/// Reads what is left of a whole body, so its store completes.
fn finish_in_background(whole: Option<ProxyBody>) {
    let Some(mut whole) = whole else { return };
    if whole.is_end_stream() {
        return;
    }
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move { while let Some(Ok(_)) = whole.frame().await {} });
    }
}
