//! What the proxy serves when it is addressed itself: the dashboard at `/`
//! (summary tiles, charts, tables, the cache browser and the access rules),
//! `/api/stats` (its JSON; `/status.json` is the old name), `/charts/*.svg`,
//! Prometheus `/metrics`, `/healthz`, `/proxy.pac` for browser
//! auto-configuration, and `/ca` (the local CA, `ca_page`).
//!
//! Every allowed client may read the overview; what names other people's
//! requests or the stored objects (recent requests, top hosts, the cache
//! browser) and every action are for admin clients (`admin_clients`,
//! default loopback). Actions are POSTs carrying the page's CSRF token.

pub mod api;
pub mod browser;
pub mod ca_page;
pub mod charts;
pub mod dashboard;
pub mod groups;
pub mod parts;

use std::net::IpAddr;

use http::header;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use self::api::Stats;
use self::dashboard::DASHBOARD_SCRIPT;
use self::parts::{DASHBOARD_STYLE, with_type};
use crate::body::{ProxyBody, full};
use crate::error::{PolicyError, ProxyError, RequestError};
use crate::intercept::ca;
use crate::pages::{self, Csp};
use crate::phases::policy;
use crate::state::ProxyState;
use crate::telemetry::metrics;

/// Answers a request addressed to the proxy itself: only under one of the
/// proxy's own names (except a health check, which tells nothing), and an
/// action only when no other site's page sent it.
pub async fn page_for(
    state: &ProxyState,
    client: IpAddr,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, ProxyError> {
    let health_check = req.uri().path() == "/healthz"
        && (req.method() == Method::GET || req.method() == Method::HEAD);
    if !health_check {
        check_addressed(state, &req)?;
    }
    let mut resp = route(state, client, req).await?;
    pages::harden(resp.headers_mut(), Csp::OwnPage);
    Ok(resp)
}

async fn route(
    state: &ProxyState,
    client: IpAddr,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, ProxyError> {
    let admin = policy::check_admin(state, client).is_ok();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    if req.method() == Method::POST {
        check_sent_by_own_page(state, req.headers())?;
        return match path.as_str() {
            "/cache/purge" => {
                policy::check_admin(state, client)?;
                browser::purge_from_form(state, req).await
            }
            _ => Err(RequestError::UnknownPage.into()),
        };
    }
    Ok(match path.as_str() {
        "/" | "" => dashboard::page(state, admin),
        "/api/stats" | "/status.json" => {
            let json = serde_json::to_string(&Stats::take(state, admin)).unwrap_or_default();
            with_type(full(json), "application/json")
        }
        "/healthz" if state.draining.load(std::sync::atomic::Ordering::Relaxed) => {
            pages::text(StatusCode::SERVICE_UNAVAILABLE, "draining\n")
        }
        "/healthz" => pages::text(StatusCode::OK, "ok\n"),
        "/metrics" => with_type(full(state.metrics.encode()), metrics::CONTENT_TYPE),
        "/proxy.pac" => with_type(
            full(pac(state, req.headers())),
            "application/x-ns-proxy-autoconfig",
        ),
        "/assets/dashboard.js" => {
            with_type(full(DASHBOARD_SCRIPT), "text/javascript; charset=utf-8")
        }
        "/assets/ferry.css" => with_type(full(DASHBOARD_STYLE), "text/css; charset=utf-8"),
        "/cache" => {
            policy::check_admin(state, client)?;
            browser::search(state, &query)
        }
        "/cache/object" => {
            policy::check_admin(state, client)?;
            browser::object(state, &query).await?
        }
        p if p == "/ca" || p.starts_with("/ca/") => {
            ca_page::ca_response(&ca::dir_or_default(state.config.ca_dir.as_deref()), &path)?
        }
        chart if chart.starts_with("/charts/") => {
            let name = chart
                .strip_prefix("/charts/")
                .and_then(|n| n.strip_suffix(".svg"))
                .unwrap_or("");
            let series = state.activity.series(std::time::SystemTime::now());
            let svg = charts::by_name(name, &series, state.config.max_concurrent)
                .ok_or(RequestError::UnknownPage)?;
            with_type(full(svg), "image/svg+xml")
        }
        _ => return Err(RequestError::UnknownPage.into()),
    })
}

/// A request in origin form (a browser talking to the proxy as a web
/// server) must name the proxy in `Host`. One in absolute form named the
/// proxy's own address already; one without `Host` (HTTP/1.0 tools) cannot
/// come from a browser.
fn check_addressed<B>(state: &ProxyState, req: &Request<B>) -> Result<(), RequestError> {
    if req.uri().authority().is_some() {
        return Ok(());
    }
    match req.headers().get(header::HOST) {
        None => Ok(()),
        Some(host) if host.to_str().is_ok_and(|h| state.own_names.accepts_host(h)) => Ok(()),
        Some(host) => Err(RequestError::NotOwnName {
            host: String::from_utf8_lossy(host.as_bytes())
                .chars()
                .take(100)
                .collect(),
        }),
    }
}

/// A state-changing request must come from one of the proxy's own pages
/// when the browser says which page sent it (`Origin`, else `Referer`);
/// tools that send neither are judged by the form's token alone.
fn check_sent_by_own_page(state: &ProxyState, headers: &HeaderMap) -> Result<(), PolicyError> {
    let sender = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER));
    match sender {
        None => Ok(()),
        Some(page) if page.to_str().is_ok_and(|p| state.own_names.accepts_page(p)) => Ok(()),
        Some(page) => Err(PolicyError::ForeignPage {
            origin: String::from_utf8_lossy(page.as_bytes())
                .chars()
                .take(100)
                .collect(),
        }),
    }
}

/// A PAC file sending everything through this proxy, at the address the
/// browser used to fetch the PAC (so it works from other machines too; the
/// name was checked to be the proxy's own). No DIRECT fallback: if the proxy
/// is down, traffic must not silently bypass it.
fn pac(state: &ProxyState, headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        })
        .map(str::to_string)
        .or_else(|| state.own_addrs.first().map(|a| a.to_string()))
        .unwrap_or_else(|| "127.0.0.1:3128".into());
    format!("function FindProxyForURL(url, host) {{\n  return \"PROXY {host}\";\n}}\n")
}
