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
pub mod parts;

use std::net::IpAddr;

use http::header;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use self::api::Stats;
use self::parts::with_type;
use crate::body::{ProxyBody, full};
use crate::error::{ProxyError, RequestError};
use crate::intercept::ca;
use crate::pages;
use crate::phases::policy;
use crate::state::ProxyState;
use crate::telemetry::metrics;

/// Answers a request addressed to the proxy itself.
pub async fn page_for(
    state: &ProxyState,
    client: IpAddr,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, ProxyError> {
    let admin = policy::check_admin(state, client).is_ok();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    if req.method() == Method::POST {
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
        "/cache" => {
            policy::check_admin(state, client)?;
            browser::search(state, &query)
        }
        "/cache/object" => {
            policy::check_admin(state, client)?;
            browser::object(state, &query).await?
        }
        p if p == "/ca" || p.starts_with("/ca/") => {
            return ca_page::ca_response(
                &ca::dir_or_default(state.config.ca_dir.as_deref()),
                &path,
            );
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

/// A PAC file sending everything through this proxy, at the address the
/// browser used to fetch the PAC (so it works from other machines too). No
/// DIRECT fallback: if the proxy is down, traffic must not silently bypass it.
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
