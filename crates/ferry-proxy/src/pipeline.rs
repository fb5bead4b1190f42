//! A request's way through the proxy, in one place:
//! client check → authentication → what is addressed (a tunnel, the proxy's
//! own pages, or an origin) → loop and destination checks → the cache
//! (`caching`) → a fetch slot → upstream (`forward`) → response relayed back
//! → one access-log line.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::access_log::AccessRecord;
use crate::acl::Refusal;
use crate::auth::AuthOutcome;
use crate::body::{Logged, ProxyBody};
use crate::dashboard;
use crate::headers::via_has_pseudonym;
use crate::pages::error_page;
use crate::state::ProxyState;
use crate::tunnel;
use crate::{caching, forward};

/// Facts about the client connection a request arrived on.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// Set when the client's address is not allowed: every request on the
    /// connection gets a refusal page.
    pub refused: Option<Refusal>,
}

/// The hyper service: answers every request (errors become pages, never a
/// dropped connection) and logs it.
pub async fn handle(
    state: Arc<ProxyState>,
    conn: Arc<ConnInfo>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let started = Instant::now();
    let record = AccessRecord {
        time: SystemTime::now(),
        client: conn.peer,
        user: None,
        method: req.method().clone(),
        url: crate::access_log::target_text(req.uri()),
        version: version_str(req.version()),
        status: 0,
        bytes: 0,
        duration_ms: 0,
        cache: "-",
    };
    let mut ctx = Ctx { record, started };
    // Boxed: hyper keeps each connection's request future allocated for the
    // connection's whole life, so an inline (multi-KiB) route future would be
    // held by every idle keep-alive connection.
    let resp = match Box::pin(route(&state, &conn, req, &mut ctx)).await {
        Routed::Respond(resp) => resp,
        // The tunnel task writes its own log line when the tunnel closes.
        Routed::Tunnel(resp) => return Ok(resp),
    };
    let mut record = ctx.record;
    record.status = resp.status().as_u16();
    let log = state.log.clone();
    let metrics = state.metrics.clone();
    Ok(resp.map(|body| Logged::new(body, record, started, log, metrics).boxed_unsync()))
}

struct Ctx {
    record: AccessRecord,
    started: Instant,
}

enum Routed {
    Respond(Response<ProxyBody>),
    Tunnel(Response<ProxyBody>),
}

async fn route(
    state: &Arc<ProxyState>,
    conn: &ConnInfo,
    req: Request<Incoming>,
    ctx: &mut Ctx,
) -> Routed {
    if let Some(refusal) = &conn.refused {
        let mut resp = error_page(StatusCode::FORBIDDEN, &ctx.record.url, &refusal.to_string());
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return Routed::Respond(resp);
    }

    // Checked before anything else: a request that already passed through this
    // proxy arrives in whatever form the previous hop used, own pages included.
    if via_has_pseudonym(req.headers(), &state.config.via_pseudonym) {
        return Routed::Respond(error_page(
            StatusCode::LOOP_DETECTED,
            &ctx.record.url,
            "request loop: this request has already passed through this proxy (Via)",
        ));
    }

    let addressed = Addressed::of(state, &req);
    // The proxy's own pages are open to allowed clients; everything else
    // needs credentials when users are configured.
    if !matches!(addressed, Addressed::Own) {
        if let Err(resp) = authenticate(state, &req, ctx).await {
            return Routed::Respond(resp);
        }
    }

    match addressed {
        Addressed::Own => Routed::Respond(dashboard::serve(state, req.uri().path(), req.headers())),
        Addressed::Invalid(cause) => {
            Routed::Respond(error_page(StatusCode::BAD_REQUEST, &ctx.record.url, cause))
        }
        Addressed::Tunnel => {
            match Box::pin(tunnel::open(state, req, ctx.record.clone(), ctx.started)).await {
                Ok(resp) => Routed::Tunnel(resp),
                Err(resp) => Routed::Respond(resp),
            }
        }
        Addressed::Origin { host } => Routed::Respond(forward(state, conn, req, &host, ctx).await),
    }
}

/// Checks `Proxy-Authorization` when users are configured; the refusal is a
/// 407 with the challenge.
async fn authenticate(
    state: &ProxyState,
    req: &Request<Incoming>,
    ctx: &mut Ctx,
) -> Result<(), Response<ProxyBody>> {
    let Some(auth) = &state.auth else {
        return Ok(());
    };
    let header = req
        .headers()
        .get(header::PROXY_AUTHORIZATION)
        .map(|v| v.as_bytes());
    match auth.check(header).await {
        AuthOutcome::Granted { user } => {
            ctx.record.user = Some(user);
            Ok(())
        }
        AuthOutcome::Missing | AuthOutcome::Invalid => {
            let mut resp = error_page(
                StatusCode::PROXY_AUTHENTICATION_REQUIRED,
                &ctx.record.url,
                "this proxy requires a user name and password (Proxy-Authorization)",
            );
            if let Ok(v) = HeaderValue::from_str(&auth.challenge()) {
                resp.headers_mut().insert(header::PROXY_AUTHENTICATE, v);
            }
            Err(resp)
        }
    }
}

/// What a request is addressed to.
enum Addressed {
    Tunnel,
    Own,
    Origin { host: String },
    Invalid(&'static str),
}

impl Addressed {
    fn of(state: &ProxyState, req: &Request<Incoming>) -> Addressed {
        if req.method() == Method::CONNECT {
            return Addressed::Tunnel;
        }
        let uri = req.uri();
        let Some(authority) = uri.authority() else {
            // Origin form: the client is talking to the proxy as a web server.
            return Addressed::Own;
        };
        match uri.scheme_str() {
            Some("http") | Some("https") => {}
            _ => return Addressed::Invalid("only http:// and https:// URLs can be fetched"),
        }
        let port = authority
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("https") {
                443
            } else {
                80
            });
        if state.is_own_address(authority.host(), port) {
            return Addressed::Own;
        }
        Addressed::Origin {
            host: authority.host().to_string(),
        }
    }
}

async fn forward(
    state: &Arc<ProxyState>,
    conn: &ConnInfo,
    req: Request<Incoming>,
    host: &str,
    ctx: &mut Ctx,
) -> Response<ProxyBody> {
    if let Err(refusal) = state.rules.load().check_destination(host) {
        return error_page(StatusCode::FORBIDDEN, &ctx.record.url, &refusal.to_string());
    }
    if let Some(cache) = &state.cache {
        if req.method() == Method::GET || req.method() == Method::HEAD {
            let (parts, _ignored_body) = req.into_parts();
            let (resp, status) = caching::serve(state, cache, conn.peer.ip(), parts, host).await;
            ctx.record.cache = status.log_token();
            return status.apply(resp);
        }
        if req.method().as_str() == "PURGE" {
            return caching::purge(cache, req.uri()).await;
        }
    }

    // The uncached path goes upstream; boxed like the cache's miss path (see
    // `caching::serve`).
    Box::pin(forward_uncached(state, conn, req, host, ctx)).await
}

/// Methods the cache does not answer (and everything, without a cache):
/// straight to the origin; a successful unsafe request invalidates what the
/// cache holds for its target.
async fn forward_uncached(
    state: &Arc<ProxyState>,
    conn: &ConnInfo,
    req: Request<Incoming>,
    host: &str,
    ctx: &mut Ctx,
) -> Response<ProxyBody> {
    let (parts, body) = req.into_parts();
    // Kept for invalidation: a successful unsafe request makes stored copies stale.
    let target = (state.cache.is_some() && !parts.method.is_safe()).then(|| {
        let mut t = Request::new(()).into_parts().0;
        t.method = parts.method.clone();
        t.uri = parts.uri.clone();
        t
    });
    let fetched = match forward::fetch(
        state,
        conn.peer.ip(),
        parts,
        body.map_err(Into::into).boxed_unsync(),
    )
    .await
    {
        Ok(fetched) => fetched,
        Err(e) => return e.page(&ctx.record.url),
    };
    if let (Some(cache), Some(target)) = (&state.cache, &target) {
        cache.invalidate(target, &fetched.head).await;
    }
    let resp = forward::relay(state, host, fetched, None);
    if state.cache.is_some() {
        ctx.record.cache = "MISS";
        return caching::CacheStatus::bypass().apply(resp);
    }
    resp
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
