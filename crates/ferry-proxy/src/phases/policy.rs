//! The request's policy phases: a loop through this proxy, the proxy
//! user's credentials, and the destination, admin and tunnel rules, each
//! refusing with a [`PolicyError`] that names the rule. The rules
//! themselves are plain data in `crate::access`.

use http::HeaderMap;
use http::header;

use crate::access::AuthOutcome;
use crate::error::{InternalError, PolicyError, ProxyError};
use crate::headers::via_has_pseudonym;
use crate::state::ProxyState;

/// The first phase (client addresses were checked at accept): a request
/// that already passed through this proxy (its pseudonym in `Via`) is a
/// loop. Checked before anything else: a looped request arrives in whatever
/// form the previous hop used, own pages included.
pub fn check_loop(state: &ProxyState, headers: &HeaderMap) -> Result<(), PolicyError> {
    if via_has_pseudonym(headers, &state.config.via_pseudonym) {
        return Err(PolicyError::Loop);
    }
    Ok(())
}

/// Checks `Proxy-Authorization` when users are configured: the user's name,
/// `None` when the proxy is open to every allowed client.
pub async fn authenticate(
    state: &ProxyState,
    headers: &HeaderMap,
    client: std::net::IpAddr,
) -> Result<Option<String>, ProxyError> {
    let Some(auth) = &state.auth else {
        return Ok(None);
    };
    let credentials = headers
        .get(header::PROXY_AUTHORIZATION)
        .map(|v| v.as_bytes());
    match auth.check(credentials, client).await {
        AuthOutcome::Granted { user } => Ok(Some(user)),
        AuthOutcome::Missing | AuthOutcome::Invalid => Err(PolicyError::AuthRequired {
            challenge: auth.challenge(),
        }
        .into()),
        AuthOutcome::BackedOff => Err(PolicyError::AuthBackedOff {
            challenge: auth.challenge(),
        }
        .into()),
        AuthOutcome::Busy => Err(InternalError::AuthBusy.into()),
    }
}

/// The destination rules (deny wins over allow) for an origin's host.
pub fn check_destination(state: &ProxyState, host: &str) -> Result<(), PolicyError> {
    state
        .rules
        .load()
        .check_destination(host)
        .map_err(PolicyError::Refused)
}

/// Requests about what is stored (PURGE) come only from admin clients.
pub fn check_admin(state: &ProxyState, client: std::net::IpAddr) -> Result<(), PolicyError> {
    state
        .rules
        .load()
        .check_admin(client)
        .map_err(PolicyError::Refused)
}

/// A tunnel must go to an allowed port of an allowed destination.
pub fn check_tunnel(state: &ProxyState, host: &str, port: u16) -> Result<(), PolicyError> {
    let rules = state.rules.load();
    rules
        .check_connect_port(port)
        .and_then(|()| rules.check_destination(host))
        .map_err(PolicyError::Refused)
}
