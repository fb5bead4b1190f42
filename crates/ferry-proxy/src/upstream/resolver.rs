//! The network policy where connections are made: names are checked after
//! DNS, on the very addresses the connector then connects to (a name cannot
//! answer one address to a check and another to the connect), and IP
//! literals, which hyper-util connects to without asking the resolver, are
//! checked before the connector sees them.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};

use crate::access::{NetworkPolicy, Refusal};
use crate::body::BoxError;

/// A connection refused by the network policy; found again in the client's
/// error chain to tell the client which rule refused it.
#[derive(Debug)]
pub struct Refused(pub Refusal);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Refused {}

/// The addresses of `addrs` the policy allows; the first refusal if none.
pub fn allowed(
    policy: &NetworkPolicy,
    client_is_local: bool,
    addrs: impl IntoIterator<Item = SocketAddr>,
) -> Result<Vec<SocketAddr>, Refusal> {
    let mut kept = Vec::new();
    let mut refusal = None;
    for addr in addrs {
        match policy.check(addr.ip(), client_is_local) {
            Ok(()) => kept.push(addr),
            Err(r) => {
                refusal.get_or_insert(r);
            }
        }
    }
    match (kept.is_empty(), refusal) {
        (true, Some(r)) => Err(r),
        _ => Ok(kept),
    }
}

/// The system resolver, with the policy applied to its answers.
#[derive(Clone)]
pub struct GuardedResolver {
    inner: GaiResolver,
    policy: Arc<NetworkPolicy>,
    client_is_local: bool,
}

impl GuardedResolver {
    pub fn new(policy: Arc<NetworkPolicy>, client_is_local: bool) -> Self {
        GuardedResolver {
            inner: GaiResolver::new(),
            policy,
            client_is_local,
        }
    }
}

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let resolving = self.inner.call(name);
        let policy = self.policy.clone();
        let local = self.client_is_local;
        Box::pin(async move {
            let addrs = resolving.await?;
            match allowed(&policy, local, addrs) {
                Ok(kept) => Ok(kept.into_iter()),
                Err(refusal) => Err(Box::new(Refused(refusal)) as BoxError),
            }
        })
    }
}

/// Checks a target that is an IP literal (`http://127.0.0.1/`,
/// `http://[::1]/`); names are left to the resolver.
pub fn check_literal(
    uri: &Uri,
    policy: &NetworkPolicy,
    client_is_local: bool,
) -> Result<(), Refused> {
    let Some(host) = uri.host() else {
        return Ok(());
    };
    match host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
    {
        Ok(ip) => policy.check(ip, client_is_local).map_err(Refused),
        Err(_) => Ok(()),
    }
}
