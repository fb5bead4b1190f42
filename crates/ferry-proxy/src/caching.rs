//! The cache's place in the request path, for GET and HEAD: answer from the
//! cache when it can (no fetch slot taken), revalidate stale copies (in the
//! background when `stale-while-revalidate` allows, or falling back to them
//! when `stale-if-error` allows), collapse concurrent misses into one origin
//! fetch, and store responses while they stream to the client. Every response
//! says what happened in `Cache-Status` (RFC 9211) and `X-Cache`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use ferry_cache::{Cache, Collapse, Hit, LeaderGuard, Lookup, NotStored, StoreWriter};
use http::header::{self, HeaderName, HeaderValue};
use http::{Response, StatusCode, Uri, request};
use http_body_util::BodyExt;

use crate::body::{FrameSink, ProxyBody};
use crate::forward::{self, FetchError};
use crate::pages::error_page;
use crate::state::ProxyState;

const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");
const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// What the cache did for one response; rendered as `Cache-Status`,
/// `X-Cache` and the access log's cache field.
#[derive(Debug, Clone, Default)]
pub struct CacheStatus {
    /// RFC 9211 `hit`: answered from the cache without going upstream.
    hit: bool,
    /// The body came from the cache (after revalidation, or stale), which is
    /// what `X-Cache: HIT` and the access log report.
    from_cache: bool,
    fwd: Option<&'static str>,
    fwd_status: Option<u16>,
    stored: bool,
    ttl: Option<i64>,
    detail: Option<&'static str>,
}

impl CacheStatus {
    fn hit(ttl: i64) -> Self {
        CacheStatus {
            hit: true,
            from_cache: true,
            ttl: Some(ttl),
            ..Default::default()
        }
    }

    /// Requests the cache does not handle (unsafe methods, ...).
    pub fn bypass() -> Self {
        CacheStatus {
            fwd: Some("method"),
            ..Default::default()
        }
    }

    fn detail(mut self, detail: &'static str) -> Self {
        self.detail = Some(detail);
        self
    }

    /// The RFC 9211 field value.
    pub fn header_value(&self) -> String {
        // One allocation, sized for the common values: this runs per response.
        let mut out = String::with_capacity(64);
        out.push_str("ferry");
        if self.hit {
            out.push_str("; hit");
        }
        if let Some(fwd) = self.fwd {
            out.push_str("; fwd=");
            out.push_str(fwd);
        }
        if let Some(status) = self.fwd_status {
            out.push_str("; fwd-status=");
            out.push_str(itoa::Buffer::new().format(status));
        }
        if self.stored {
            out.push_str("; stored");
        }
        if let Some(ttl) = self.ttl {
            out.push_str("; ttl=");
            out.push_str(itoa::Buffer::new().format(ttl));
        }
        if let Some(detail) = self.detail {
            out.push_str("; detail=");
            out.push_str(detail);
        }
        out
    }

    /// The access log's cache field.
    pub fn log_token(&self) -> &'static str {
        if self.from_cache { "HIT" } else { "MISS" }
    }

    /// Adds `Cache-Status` and `X-Cache` to a response.
    pub fn apply<B>(&self, mut resp: Response<B>) -> Response<B> {
        let h = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&self.header_value()) {
            h.insert(CACHE_STATUS, v);
        }
        h.insert(
            X_CACHE,
            HeaderValue::from_static(if self.from_cache { "HIT" } else { "MISS" }),
        );
        resp
    }
}

/// Answers a GET or HEAD through the cache.
///
/// The paths that go upstream are boxed: hyper keeps one request future per
/// connection for the connection's life, and the hit path should not carry
/// the size of the miss path in every idle connection (nor allocate it per hit).
pub async fn serve(
    state: &Arc<ProxyState>,
    cache: &Cache,
    client: IpAddr,
    parts: request::Parts,
    host: &str,
) -> (Response<ProxyBody>, CacheStatus) {
    match cache.lookup(&parts).await {
        Lookup::Fresh(hit) => {
            let ttl = hit.ttl(SystemTime::now());
            (respond_from(state, hit, &parts), CacheStatus::hit(ttl))
        }
        Lookup::OnlyIfCachedMiss => (
            error_page(
                StatusCode::GATEWAY_TIMEOUT,
                &parts.uri.to_string(),
                "not in the cache, and the request allows only cached responses (only-if-cached)",
            ),
            CacheStatus::default().detail("only-if-cached"),
        ),
        Lookup::Bypass => {
            Box::pin(fetch_and_store(
                state, cache, client, parts, host, None, "bypass",
            ))
            .await
        }
        Lookup::Stale(stale) if stale.rules.while_revalidate => {
            let ttl = stale.hit.ttl(SystemTime::now());
            spawn_revalidation(
                state.clone(),
                cache.clone(),
                client,
                parts.clone(),
                host.to_string(),
            );
            (
                respond_from(state, stale.hit, &parts),
                CacheStatus::hit(ttl).detail("stale-while-revalidate"),
            )
        }
        Lookup::Stale(stale) => {
            Box::pin(revalidate(state, cache, client, parts, host, stale)).await
        }
        Lookup::Miss(miss) => {
            let fwd = miss.kind.as_str();
            // Only a plain GET can lead a collapsed fetch: its response is the
            // complete object every follower needs.
            if !is_plain_get(&parts) {
                return Box::pin(fetch_and_store(
                    state, cache, client, parts, host, None, fwd,
                ))
                .await;
            }
            match cache.collapse(&miss.key) {
                Collapse::Pass => {
                    Box::pin(fetch_and_store(
                        state, cache, client, parts, host, None, fwd,
                    ))
                    .await
                }
                Collapse::Leader(guard) => {
                    Box::pin(fetch_and_store(
                        state,
                        cache,
                        client,
                        parts,
                        host,
                        Some(guard),
                        fwd,
                    ))
                    .await
                }
                Collapse::Follower(follower) => {
                    follower.wait(ferry_cache::COLLAPSE_WAIT).await;
                    match cache.lookup(&parts).await {
                        Lookup::Fresh(hit) => {
                            let ttl = hit.ttl(SystemTime::now());
                            (
                                respond_from(state, hit, &parts),
                                CacheStatus::hit(ttl).detail("collapsed"),
                            )
                        }
                        // The leader's response could not be stored (or is
                        // already stale): fetch for this client.
                        _ => {
                            Box::pin(fetch_and_store(
                                state, cache, client, parts, host, None, fwd,
                            ))
                            .await
                        }
                    }
                }
            }
        }
    }
}

fn is_plain_get(parts: &request::Parts) -> bool {
    parts.method == http::Method::GET && !parts.headers.contains_key(header::RANGE)
}

/// The stored response as this request gets it, marked as passing through us.
fn respond_from(state: &ProxyState, hit: Hit, parts: &request::Parts) -> Response<ProxyBody> {
    let resp = hit.into_response(parts);
    let (mut head, body) = resp.into_parts();
    state.add_via(&mut head.headers, http::Version::HTTP_11);
    Response::from_parts(head, body.map_err(Into::into).boxed_unsync())
}

/// Fetches from the origin and stores the response while relaying it, if the
/// rules allow. `guard` is the collapsed-forwarding lead, released when the
/// store completes (or right away if nothing is stored).
async fn fetch_and_store(
    state: &Arc<ProxyState>,
    cache: &Cache,
    client: IpAddr,
    parts: request::Parts,
    host: &str,
    guard: Option<LeaderGuard>,
    fwd: &'static str,
) -> (Response<ProxyBody>, CacheStatus) {
    let mut upstream = parts.clone();
    if guard.is_some() {
        // The stored object must be the whole representation, whatever this
        // client's own conditionals (its 200 still satisfies them).
        upstream.headers.remove(header::IF_NONE_MATCH);
        upstream.headers.remove(header::IF_MODIFIED_SINCE);
    }
    let fetched = match forward::fetch(state, client, upstream, forward::no_body()).await {
        Ok(f) => f,
        Err(e) => {
            let status = CacheStatus {
                fwd: Some(fwd),
                ..Default::default()
            };
            return (e.page(&parts.uri.to_string()), status);
        }
    };
    let mut status = CacheStatus {
        fwd: Some(fwd),
        fwd_status: Some(fetched.head.status.as_u16()),
        ..Default::default()
    };
    let sink = match cache
        .begin_store(
            &parts,
            &fetched.head,
            fetched.request_time,
            fetched.response_time,
        )
        .await
    {
        Ok(writer) => {
            status.stored = true;
            Some(Box::new(StoreSink { writer, guard }) as Box<dyn FrameSink>)
        }
        Err(reason) => {
            status.detail = Some(not_stored_detail(reason));
            None
        }
    };
    // A plain miss that is stored reads best without the upstream status.
    if status.stored && fwd != "stale" {
        status.fwd_status = None;
    }
    (forward::relay(state, host, fetched, sink), status)
}

fn not_stored_detail(reason: NotStored) -> &'static str {
    reason.as_str()
}

/// Revalidates a stale stored response before answering (RFC 9111 §4.3).
async fn revalidate(
    state: &Arc<ProxyState>,
    cache: &Cache,
    client: IpAddr,
    parts: request::Parts,
    host: &str,
    stale: ferry_cache::Stale,
) -> (Response<ProxyBody>, CacheStatus) {
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
        let ttl = hit.ttl(SystemTime::now());
        let status = CacheStatus {
            from_cache: true,
            fwd: Some("stale"),
            fwd_status,
            ttl: Some(ttl),
            detail: Some("stale-if-error"),
            ..Default::default()
        };
        (respond_from(state, hit, &parts), status)
    };
    let fetched = match forward::fetch(state, client, conditional, forward::no_body()).await {
        Ok(f) => f,
        Err(FetchError::Upstream(_)) if stale.rules.if_error => {
            return serve_stale(stale.hit, None);
        }
        Err(e) => {
            let status = CacheStatus {
                fwd: Some("stale"),
                ..Default::default()
            };
            return (e.page(&parts.uri.to_string()), status);
        }
    };
    let code = fetched.head.status;
    if code == StatusCode::NOT_MODIFIED {
        let head = fetched.head;
        // Nothing more to read; the slot frees now.
        drop(fetched.slot);
        return match cache
            .refresh(stale.hit, &parts, &head, SystemTime::now())
            .await
        {
            Ok(hit) => {
                let status = CacheStatus {
                    from_cache: true,
                    fwd: Some("stale"),
                    fwd_status: Some(304),
                    ..Default::default()
                };
                (respond_from(state, hit, &parts), status)
            }
            // The 304 does not describe what is stored: fetch it whole.
            Err(_) => fetch_and_store(state, cache, client, parts, host, None, "stale").await,
        };
    }
    if code.is_server_error() && stale.rules.if_error {
        return serve_stale(stale.hit, Some(code.as_u16()));
    }
    // A new representation: it replaces the stored one as it streams.
    let mut status = CacheStatus {
        fwd: Some("stale"),
        fwd_status: Some(code.as_u16()),
        ..Default::default()
    };
    let sink = match cache
        .begin_store(
            &parts,
            &fetched.head,
            fetched.request_time,
            fetched.response_time,
        )
        .await
    {
        Ok(writer) => {
            status.stored = true;
            Some(Box::new(StoreSink {
                writer,
                guard: None,
            }) as Box<dyn FrameSink>)
        }
        Err(reason) => {
            status.detail = Some(not_stored_detail(reason));
            None
        }
    };
    (forward::relay(state, host, fetched, sink), status)
}

/// `stale-while-revalidate`: refresh the stored response off the request path.
/// One background revalidation per URL at a time.
fn spawn_revalidation(
    state: Arc<ProxyState>,
    cache: Cache,
    client: IpAddr,
    mut parts: request::Parts,
    host: String,
) {
    parts.method = http::Method::GET;
    parts.headers.remove(header::RANGE);
    tokio::spawn(async move {
        let Lookup::Stale(stale) = cache.lookup(&parts).await else {
            return;
        };
        let Collapse::Leader(_guard) = cache.collapse(stale.hit.key()) else {
            return;
        };
        let (resp, status) = revalidate(&state, &cache, client, parts, &host, stale).await;
        // Drain the body so a new representation is stored completely.
        let _ = resp.into_body().collect().await;
        tracing::debug!(host, cache_status = %status.header_value(), "background revalidation done");
    });
}

/// `PURGE <url>` from an allowed client removes the stored response.
pub async fn purge(cache: &Cache, uri: &Uri) -> Response<ProxyBody> {
    if cache.purge(uri).await {
        crate::pages::text(StatusCode::OK, "purged\n")
    } else {
        error_page(StatusCode::NOT_FOUND, &uri.to_string(), "not in the cache")
    }
}

/// Feeds an upstream body into the cache; the object becomes visible (and
/// collapsed followers are released) once the store has completed.
struct StoreSink {
    writer: StoreWriter,
    guard: Option<LeaderGuard>,
}

impl FrameSink for StoreSink {
    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        self.writer.poll_ready(cx)
    }

    fn data(&mut self, chunk: &bytes::Bytes) {
        self.writer.push(chunk);
    }

    fn finish(self: Box<Self>) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        let StoreSink { writer, guard } = *self;
        Box::pin(async move {
            if let Err(e) = writer.finish().await {
                tracing::debug!(error = %e, "response not stored");
            }
            drop(guard);
        })
    }
}
