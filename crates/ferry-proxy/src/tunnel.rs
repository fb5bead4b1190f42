//! CONNECT tunnels: checked against the allowed ports and destination rules,
//! counted against `max_tunnels` (not the fetch slots), then bytes are copied
//! both ways until either side closes or the tunnel is idle too long. The access-log line is written when the
//! tunnel ends, with the bytes sent to the client.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::access_log::AccessRecord;
use crate::body::{ProxyBody, empty};
use crate::pages::error_page;
use crate::stall::Activity;
use crate::state::ProxyState;

pub async fn open(
    state: &Arc<ProxyState>,
    req: Request<Incoming>,
    mut record: AccessRecord,
    started: Instant,
) -> Result<Response<ProxyBody>, Response<ProxyBody>> {
    let target = record.url.clone();
    let Some(authority) = req.uri().authority().cloned() else {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            &target,
            "CONNECT needs a host:port target",
        ));
    };
    let host = authority.host().to_string();
    let Some(port) = authority.port_u16() else {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            &target,
            "CONNECT needs a port (host:port)",
        ));
    };
    let rules = state.rules.load();
    if let Err(refusal) = rules
        .check_connect_port(port)
        .and_then(|()| rules.check_destination(&host))
    {
        return Err(error_page(
            StatusCode::FORBIDDEN,
            &target,
            &refusal.to_string(),
        ));
    }
    let Ok(permit) = state.tunnels.clone().try_acquire_owned() else {
        let mut resp = error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            &target,
            "too many tunnels are open (max-tunnels); try again shortly",
        );
        resp.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("5"));
        return Err(resp);
    };
    let upstream = match state.upstream.connect_tunnel(&host, port).await {
        Ok(stream) => stream,
        Err(e) => return Err(error_page(e.status(), &target, &e.to_string())),
    };
    let state2 = state.clone();
    let idle_limit = state.config.tunnel_idle_timeout();
    state.metrics.tunnels_open.fetch_add(1, Ordering::Relaxed);
    state.metrics.tunnels_total.fetch_add(1, Ordering::Relaxed);
    state.tunnel_tasks.spawn(async move {
        let _permit = permit;
        record.status = 200;
        match hyper::upgrade::on(req).await {
            Ok(upgraded) => {
                let activity = Activity::new();
                let mut client = activity.track(TokioIo::new(upgraded));
                let mut origin = activity.track(upstream);
                tokio::select! {
                    copied = tokio::io::copy_bidirectional(&mut client, &mut origin) => match copied {
                        Ok((_to_origin, to_client)) => record.bytes = to_client,
                        Err(e) => tracing::debug!(target = %record.url, error = %e, "tunnel ended with an error"),
                    },
                    _ = activity.idle(idle_limit) => {
                        tracing::debug!(target = %record.url, "tunnel closed after being idle");
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "CONNECT upgrade failed"),
        }
        state2.metrics.tunnels_open.fetch_sub(1, Ordering::Relaxed);
        record.duration_ms = started.elapsed().as_millis() as u64;
        state2.metrics.record_response(&record);
        state2.log.record(record);
    });
    Ok(Response::new(empty()))
}
