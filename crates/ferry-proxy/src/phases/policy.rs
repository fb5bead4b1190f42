//! The request's policy phases: a loop through this proxy, the proxy
//! user's credentials, and the destination, admin and tunnel rules, each
//! refusing with a [`PolicyError`] that names the rule. The rules
//! themselves are plain data in `crate::access`.

use std::net::IpAddr;
use std::sync::Arc;

use bytesize::ByteSize;
use http::HeaderMap;
use http::header;

use crate::access::AuthOutcome;
use crate::error::{InternalError, PolicyError, ProxyError};
use crate::groups::group::Group;
use crate::groups::quota;
use crate::groups::rate::Meter;
use crate::groups::schedule::LocalMoment;
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

/// The group a client is in (its user's group first), if groups are
/// configured and one names it.
pub fn group_of(state: &ProxyState, client: IpAddr, user: Option<&str>) -> Option<Arc<Group>> {
    let groups = state.groups.load();
    if groups.is_empty() {
        return None;
    }
    groups.group_for(client, user).cloned()
}

/// What a group member's bytes are paced by and counted against; refuses
/// when the client's daily quota is spent. A client is its user, when
/// signed in, else its address.
pub fn meter(
    state: &ProxyState,
    group: &Group,
    client: IpAddr,
    user: Option<&str>,
) -> Result<Meter, PolicyError> {
    if group.rate.is_none() && group.daily_quota.is_none() {
        return Ok(Meter::default());
    }
    let counter = match group.daily_quota {
        Some(limit) => {
            let counter = state.quota.counter_of(client, user);
            if counter.load(std::sync::atomic::Ordering::Relaxed) >= limit {
                let (wait, at) = quota::resets();
                return Err(PolicyError::QuotaSpent {
                    group: group.name.clone(),
                    quota: ByteSize(limit).display().si().to_string(),
                    resets: at,
                    resets_in_secs: wait.as_secs().max(1),
                });
            }
            Some(counter)
        }
        None => None,
    };
    Ok(Meter {
        pacers: group
            .rate
            .map(|bps| state.rates.pacers(&quota::client_key(client, user), bps)),
        counter,
    })
}

/// The destination rules for an origin's host: the client's group's rules
/// if it is in one, else the top-level ones (deny wins over allow).
pub fn check_destination(
    state: &ProxyState,
    group: Option<&Group>,
    host: &str,
) -> Result<(), PolicyError> {
    match group {
        Some(group) => check_group_destination(state, group, host),
        None => state
            .rules
            .load()
            .check_destination(host)
            .map_err(PolicyError::Refused),
    }
}

fn check_group_destination(
    state: &ProxyState,
    group: &Group,
    host: &str,
) -> Result<(), PolicyError> {
    // The clock is read only for a group with a schedule.
    let at = match group.schedule {
        Some(_) => LocalMoment::now(),
        None => LocalMoment::ALWAYS,
    };
    group
        .check_destination(host, &state.lists.load(), at)
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
pub fn check_tunnel(
    state: &ProxyState,
    group: Option<&Group>,
    host: &str,
    port: u16,
) -> Result<(), PolicyError> {
    state
        .rules
        .load()
        .check_connect_port(port)
        .map_err(PolicyError::Refused)?;
    check_destination(state, group, host)
}
