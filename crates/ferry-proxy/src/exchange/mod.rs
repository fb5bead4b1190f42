//! One request's whole way through the proxy, read top to bottom in
//! [`handle`] and [`Exchange::proceed`]:
//!
//! admit → route (own page | tunnel | origin) → policy checks → cache lookup
//! → hit / revalidate / miss → fetch slot → upstream → store while relaying →
//! respond → log.
//!
//! Each phase is a function in the module that owns it (`crate::phases`:
//! `policy`, `caching`, `forward`, `tunnel`; `route` here; the proxy's own
//! pages in `crate::own_pages`); this module holds the [`Exchange`], the one
//! context created per request, which carries what the phases decided. What
//! the cache did is a [`CacheOutcome`], what failed is a
//! [`ProxyError`](crate::error::ProxyError); the response headers, the
//! access-log line and the metrics are all derived from those values.

mod logged;
mod route;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use ferry_cache::CacheKey;
use http::{Method, Request, Response};
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use self::logged::Logged;
use self::route::Route;
use crate::access::{Refusal, is_local_client};
use crate::body::ProxyBody;
use crate::config::LogFormat;
use crate::conn::{ConnInfo, RequestHandler};
use crate::error::{ProxyError, RequestError};
use crate::groups::group::Group;
use crate::groups::rate::Meter;
use crate::host::normalize_host;
use crate::outcome::record::{target_text, version_str};
use crate::outcome::{AccessRecord, BypassReason, CacheOutcome, Failure, RequestKind};
use crate::own_pages;
use crate::phases::caching::{self, CacheRequest};
use crate::phases::intercepted::to_origin_url;
use crate::phases::policy;
use crate::phases::tunnel::{self, OpenTunnel};
use crate::state::ProxyState;

/// The exchange as the [`RequestHandler`] of intercepted tunnels: the
/// requests inside one are served exactly as plain ones.
#[derive(Clone)]
struct Exchanges(Arc<ProxyState>);

impl RequestHandler for Exchanges {
    fn handle(
        self,
        conn: Arc<ConnInfo>,
        req: Request<Incoming>,
    ) -> impl std::future::Future<Output = Response<ProxyBody>> + Send + 'static {
        let state = self.0;
        async move {
            match handle(state, conn, req).await {
                Ok(resp) => resp,
                Err(never) => match never {},
            }
        }
    }
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
    /// The operator's cache rule that decided the freshness of what was
    /// served or stored, if one did (`Cache-Status` names it).
    pub rule: Option<Arc<str>>,
    /// Where the request was routed.
    pub kind: RequestKind,
    /// What failed, if the request failed.
    pub error: Option<Failure>,
    /// The client's group, if it is in one (its rules replace the top-level
    /// destination rules).
    pub group: Option<Arc<Group>>,
    /// What the client's bytes are paced by and counted against (its
    /// group's rate and quota); idle for everyone else.
    pub meter: Meter,
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
        to_origin_url(&mut req, &tls.authority);
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
            target: target_text(req.uri()),
            version: req.version(),
            key: None,
            outcome: CacheOutcome::NotConsulted,
            rule: None,
            kind: RequestKind::Origin,
            error: None,
            group: None,
            meter: Meter::default(),
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
        policy::check_loop(state, req.headers())?;
        let route = Route::of(state, &req);
        // The proxy's own pages are open to allowed clients; everything else
        // needs credentials when users are configured (inside an intercepted
        // tunnel, the CONNECT's).
        if let Some(tls) = &conn.intercepted {
            self.user = tls.user.clone();
        } else if route != Ok(Route::Own) {
            self.user = policy::authenticate(state, req.headers(), self.client.ip()).await?;
        }
        let route = route?;
        if route != Route::Own {
            // The proxy's own pages stay open to a client whose quota is
            // spent: the dashboard is where it can see why.
            self.group = policy::group_of(state, self.client.ip(), self.user.as_deref());
            if let Some(group) = &self.group {
                self.meter = policy::meter(state, group, self.client.ip(), self.user.as_deref())?;
            }
        }
        if conn.health_checks_only && !(route == Route::Own && is_health_check(&req)) {
            return Err(Refusal::ClientNotAllowed {
                client: self.client.ip(),
            }
            .into());
        }
        self.kind = match route {
            Route::Own => RequestKind::Own,
            Route::Tunnel { .. } => RequestKind::Tunnel,
            Route::Origin { .. } => RequestKind::Origin,
        };
        match route {
            Route::Own => {
                let page = Box::pin(own_pages::page_for(state, self.client.ip(), req)).await?;
                Ok(Reply::Response(page))
            }
            Route::Tunnel { .. } if conn.intercepted.is_some() => {
                Err(RequestError::NestedConnect.into())
            }
            Route::Tunnel { host, port } if self.intercepts(state, &host) => {
                policy::check_tunnel(state, self.group.as_deref(), &host, port)?;
                let local = is_local_client(self.client.ip());
                state.upstream.check_reachable(&host, port, local).await?;
                let intercept = tunnel::Intercept::reserve(state, &host, port, self.user.clone())?;
                Ok(Reply::Intercept(Box::new((intercept, req))))
            }
            Route::Tunnel { host, port } => {
                policy::check_tunnel(state, self.group.as_deref(), &host, port)?;
                let open = Box::pin(tunnel::open(state, self.client.ip(), &host, port)).await?;
                Ok(Reply::Tunnel(Box::new((open, req))))
            }
            Route::Origin { host } => {
                policy::check_destination(state, self.group.as_deref(), &host)?;
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
        let host = normalize_host(host);
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
        // The operator's rule for this URL, if any (most proxies have none,
        // and pay nothing for them).
        let rule = (!state.cache_rules.is_empty())
            .then(|| {
                state
                    .cache_rules
                    .find(host, req.uri().path(), req.headers())
            })
            .flatten();
        let key = match rule {
            Some(rule) => CacheKey::from_uri(&rule.key_uri(req.uri())),
            None => CacheKey::from_uri(req.uri()),
        };
        let cached = state.cache.as_ref().zip(key);
        let Some((cache, key)) = cached else {
            // The uncached path is boxed like the cache's miss path (see
            // `caching::answer`).
            return Box::pin(caching::forward_uncached(
                state,
                client,
                req,
                host,
                None,
                &self.meter,
            ))
            .await;
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
                rule,
            };
            let served = caching::answer(cx, parts).await;
            self.outcome = served.outcome;
            self.rule = served.rule;
            return served.result;
        }
        if req.method().as_str() == "PURGE" {
            policy::check_admin(state, client)?;
            return caching::purge(cache, key).await;
        }
        self.outcome = CacheOutcome::Bypass(if lookup {
            BypassReason::RequestBody
        } else {
            BypassReason::Method
        });
        Box::pin(caching::forward_uncached(
            state,
            client,
            req,
            host,
            Some((cache, key)),
            &self.meter,
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
                let meter = std::mem::take(&mut self.meter);
                let record = self.into_record(200);
                return tunnel::start(state, open, req, record, started, meter);
            }
            Ok(Reply::Intercept(intercept)) => {
                let (intercept, req) = *intercept;
                let (peer, started) = (self.client, self.started);
                let record = self.into_record(200);
                return intercept.start(
                    state,
                    req,
                    peer,
                    record,
                    started,
                    Exchanges(state.clone()),
                );
            }
            Err(error) => {
                self.error = Some(error.failure());
                if matches!(error, ProxyError::Policy(_)) {
                    self.outcome = CacheOutcome::Refused;
                }
                error.response(&self.target, state.config.block_page_contact.as_deref())
            }
        };
        self.outcome.apply(
            resp.headers_mut(),
            &state.config.via_pseudonym,
            self.rule.as_deref(),
        );
        let started = self.started;
        let meter = std::mem::take(&mut self.meter);
        let record = self.into_record(resp.status().as_u16());
        let (log, metrics) = (state.log.clone(), state.metrics.clone());
        if !meter.is_idle() {
            resp = resp.map(|body| meter.downloading(body).boxed_unsync());
        }
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
            rule: self.rule,
            group: self.group.map(|g| g.name.clone()),
        }
    }
}

/// `GET /healthz` (or `HEAD`): what a load balancer's health check asks.
fn is_health_check<B>(req: &Request<B>) -> bool {
    req.uri().path() == "/healthz" && (req.method() == Method::GET || req.method() == Method::HEAD)
}
