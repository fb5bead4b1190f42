//! One request's whole way through the proxy, read top to bottom in
//! [`handle`] and [`Exchange::proceed`]:
//!
//! admit → route (own page | tunnel | origin) → policy checks → cache lookup
//! → hit / revalidate / miss → fetch slot → upstream → store while relaying →
//! respond → log.
//!
//! Each phase is a function in the module that owns it (`access`, `route`,
//! `cache_path`, `upstream`, `tunnel`, `ops::dashboard`); this module holds
//! the [`Exchange`], the one context created per request, which carries what
//! the phases decided. What the cache did is a [`CacheOutcome`], what failed
//! is a [`ProxyError`](crate::error::ProxyError); the response headers, the
//! access-log line and the metrics are all derived from those values.

mod logged;
mod outcome;
mod route;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use ferry_cache::{Cache, CacheKey};
use http::{Method, Request, Response};
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;

pub use outcome::{
    BypassReason, ByteSource, CacheOutcome, Fwd, RequestKind, RequestOutcome, StaleServed,
};
pub use route::Route;

use self::logged::Logged;
pub use self::logged::finish as finish_record;
use crate::access;
use crate::body::ProxyBody;
use crate::cache_path::{self, CacheRequest};
use crate::error::{Failure, ProxyError};
use crate::ops::access_log::{self, AccessRecord, LogFormat};
use crate::ops::dashboard;
use crate::state::ProxyState;
use crate::tunnel::{self, OpenTunnel};
use crate::upstream;

/// Facts about the client connection a request arrived on (one whose
/// address the rules allow: others are refused at accept).
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// Set on the TLS connection inside an intercepted CONNECT tunnel.
    pub intercepted: Option<Intercepted>,
}

/// The CONNECT an intercepted connection came through: every request on it
/// is for that origin, whatever its own `Host` or `:authority` says, and it
/// was authenticated with the CONNECT.
#[derive(Debug, Clone)]
pub struct Intercepted {
    /// `host` or `host:port` (the port when not 443), as in an `https://` URL.
    pub authority: http::uri::Authority,
    pub user: Option<String>,
}

/// One request and what has been decided about it so far.
#[derive(Debug)]
pub struct Exchange {
    pub client: SocketAddr,
    /// Set once authentication passed (when users are configured).
    pub user: Option<String>,
    pub method: Method,
    /// The request target as text: the log and error pages show it. A copy,
    /// not the `Uri`: that shares the connection's read buffer, which hyper
    /// could then not reuse for the next request while the log line waits.
    pub target: String,
    pub version: http::Version,
    /// The cache key, built once when the request reaches the cache.
    pub key: Option<CacheKey>,
    pub outcome: CacheOutcome,
    /// Where the request was routed.
    pub kind: RequestKind,
    /// What failed, if the request failed.
    pub error: Option<Failure>,
    /// `User-Agent` and `Referer`, kept only when the log has room for them.
    pub user_agent: Option<String>,
    pub referer: Option<String>,
    /// Arrival, on the wall clock (for the log) and the monotonic one (for
    /// the duration).
    pub time: SystemTime,
    pub started: Instant,
}

/// What the phases produced: a response, or a tunnel to start once the
/// client has been told `200` (boxed: it is rare, and this value is moved
/// through every request's future).
enum Reply {
    Response(Response<ProxyBody>),
    Tunnel(Box<(OpenTunnel, Request<Incoming>)>),
    /// A CONNECT whose TLS the proxy terminates (`intercept_tls`).
    Intercept(Box<(tunnel::Intercept, Request<Incoming>)>),
}

/// The hyper service: answers every request (failures become pages, never a
/// dropped connection) and logs it.
pub async fn handle(
    state: Arc<ProxyState>,
    conn: Arc<ConnInfo>,
    mut req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let json_log = state.config.log_format == LogFormat::Json;
    if let Some(tls) = &conn.intercepted {
        crate::intercept::inner::to_origin_url(&mut req, &tls.authority);
    }
    let mut exchange = Exchange::begin(conn.peer, &req, json_log);
    // Boxed: hyper keeps each connection's request future allocated for the
    // connection's whole life, so an inline (multi-KiB) future would be held
    // by every idle keep-alive connection.
    let reply = Box::pin(exchange.proceed(&state, &conn, req)).await;
    Ok(exchange.respond(&state, reply))
}

impl Exchange {
    fn begin(client: SocketAddr, req: &Request<Incoming>, json_log: bool) -> Exchange {
        // Copied (not the header values, which share hyper's read buffer),
        // and only when the log uses them.
        let header_text = |name| {
            json_log
                .then(|| req.headers().get(name))
                .flatten()
                .map(|v: &http::HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        Exchange {
            client,
            user: None,
            method: req.method().clone(),
            target: access_log::target_text(req.uri()),
            version: req.version(),
            key: None,
            outcome: CacheOutcome::NotConsulted,
            kind: RequestKind::Origin,
            error: None,
            user_agent: header_text(http::header::USER_AGENT),
            referer: header_text(http::header::REFERER),
            time: SystemTime::now(),
            started: Instant::now(),
        }
    }

    /// The phases up to the response.
    async fn proceed(
        &mut self,
        state: &Arc<ProxyState>,
        conn: &ConnInfo,
        req: Request<Incoming>,
    ) -> Result<Reply, ProxyError> {
        access::admit(state, req.headers())?;
        let route = Route::of(state, &req);
        // The proxy's own pages are open to allowed clients; everything else
        // needs credentials when users are configured (inside an intercepted
        // tunnel, the CONNECT's).
        if let Some(tls) = &conn.intercepted {
            self.user = tls.user.clone();
        } else if route != Ok(Route::Own) {
            self.user = access::authenticate(state, req.headers(), self.client.ip()).await?;
        }
        let route = route?;
        self.kind = match route {
            Route::Own => RequestKind::Own,
            Route::Tunnel { .. } => RequestKind::Tunnel,
            Route::Origin { .. } => RequestKind::Origin,
        };
        match route {
            Route::Own => {
                let page = Box::pin(dashboard::serve(state, self.client.ip(), req)).await?;
                Ok(Reply::Response(page))
            }
            Route::Tunnel { .. } if conn.intercepted.is_some() => {
                Err(crate::error::RequestError::NestedConnect.into())
            }
            Route::Tunnel { host, port } if self.intercepts(state, &host) => {
                access::check_tunnel(state, &host, port)?;
                let intercept = tunnel::Intercept::reserve(state, &host, port, self.user.clone())?;
                Ok(Reply::Intercept(Box::new((intercept, req))))
            }
            Route::Tunnel { host, port } => {
                access::check_tunnel(state, &host, port)?;
                let open = Box::pin(tunnel::open(state, self.client.ip(), &host, port)).await?;
                Ok(Reply::Tunnel(Box::new((open, req))))
            }
            Route::Origin { host } => {
                access::check_destination(state, &host)?;
                self.forward(state, req, &host).await.map(Reply::Response)
            }
        }
    }

    /// Whether a CONNECT to `host` is intercepted: interception is on, the
    /// site is not excluded, and this client has not been refusing the
    /// proxy's certificate for it lately.
    fn intercepts(&self, state: &ProxyState, host: &str) -> bool {
        let Some(interception) = &state.intercept else {
            return false;
        };
        if !state.rules.load().may_intercept(host) {
            return false;
        }
        let host = crate::access::normalize_host(host);
        let now = Instant::now();
        if interception
            .passthrough
            .active(self.client.ip(), &host, now)
        {
            state.metrics.intercept_auto_passthrough.inc();
            return false;
        }
        true
    }

    /// An origin's URL: the cache answers what it can (GET, HEAD, PURGE);
    /// everything else goes straight upstream.
    async fn forward(
        &mut self,
        state: &Arc<ProxyState>,
        req: Request<Incoming>,
        host: &str,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        let client = self.client.ip();
        let cached = state.cache.as_ref().zip(CacheKey::from_uri(req.uri()));
        let Some((cache, key)) = cached else {
            // The uncached path is boxed like the cache's miss path (see
            // `cache_path::serve`).
            return Box::pin(forward_uncached(state, client, req, host, None)).await;
        };
        let key = &*self.key.insert(key);
        // A GET or HEAD with a body is not answered from the cache, nor
        // stored: it goes to the origin with its body (the body may change
        // the answer, and dropping it would leave the client's framing
        // describing nothing).
        let lookup = req.method() == Method::GET || req.method() == Method::HEAD;
        let bodyless = req.body().is_end_stream();
        if lookup && bodyless {
            let (parts, _ignored_body) = req.into_parts();
            let cx = CacheRequest {
                state,
                cache,
                key,
                client,
                host,
            };
            let (result, outcome) = cache_path::serve(cx, parts).await;
            self.outcome = outcome;
            return result;
        }
        if req.method().as_str() == "PURGE" {
            access::check_admin(state, client)?;
            return cache_path::purge(cache, key).await;
        }
        self.outcome = CacheOutcome::Bypass(if lookup {
            BypassReason::RequestBody
        } else {
            BypassReason::Method
        });
        Box::pin(forward_uncached(
            state,
            client,
            req,
            host,
            Some((cache, key)),
        ))
        .await
    }

    /// The last phases: the response carries what the cache did, and the
    /// log line and metrics are written when its body ends (a tunnel's when
    /// the tunnel closes).
    fn respond(
        mut self,
        state: &Arc<ProxyState>,
        reply: Result<Reply, ProxyError>,
    ) -> Response<ProxyBody> {
        let mut resp = match reply {
            Ok(Reply::Response(resp)) => resp,
            Ok(Reply::Tunnel(tunnel)) => {
                let (open, req) = *tunnel;
                let started = self.started;
                let record = self.into_record(200);
                return tunnel::start(state, open, req, record, started);
            }
            Ok(Reply::Intercept(intercept)) => {
                let (intercept, req) = *intercept;
                let (peer, started) = (self.client, self.started);
                let record = self.into_record(200);
                return intercept.start(state, req, peer, record, started);
            }
            Err(error) => {
                self.error = Some(error.failure());
                if matches!(error, ProxyError::Policy(_)) {
                    self.outcome = CacheOutcome::Refused;
                }
                error.response(&self.target)
            }
        };
        self.outcome
            .apply(resp.headers_mut(), &state.config.via_pseudonym);
        let started = self.started;
        let record = self.into_record(resp.status().as_u16());
        let (log, metrics) = (state.log.clone(), state.metrics.clone());
        resp.map(|body| Logged::new(body, record, started, log, metrics).boxed_unsync())
    }

    /// What the access log and the metrics keep of this exchange.
    fn into_record(self, status: u16) -> AccessRecord {
        AccessRecord {
            time: self.time,
            client: self.client,
            user: self.user,
            method: self.method,
            url: self.target,
            version: version_str(self.version),
            status,
            bytes: 0,
            duration_us: 0,
            cache: self.outcome,
            kind: self.kind,
            error: self.error,
            user_agent: self.user_agent,
            referer: self.referer,
        }
    }
}

/// Methods the cache does not answer (and everything, without a cache):
/// straight to the origin with the client's body. A successful unsafe
/// request invalidates what the cache holds for its target; a POST response
/// that names its target as its `Content-Location` may replace it.
async fn forward_uncached(
    state: &Arc<ProxyState>,
    client: IpAddr,
    req: Request<Incoming>,
    host: &str,
    cache: Option<(&Cache, &CacheKey)>,
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
    let body = body.map_err(Into::into).boxed_unsync();
    let fetched = upstream::fetch(state, client, parts, body).await?;
    if let (Some((cache, key)), Some(target)) = (cache, &target) {
        cache.invalidate(key, target, &fetched.head).await;
    }
    if let (Some((cache, key)), Some(get)) = (cache, &post_as_get) {
        return Ok(cache_path::relay_post_response(state, cache, key, host, get, fetched).await);
    }
    Ok(upstream::relay(state, host, fetched, None))
}

fn version_str(v: http::Version) -> &'static str {
    match v {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2",
        http::Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}
