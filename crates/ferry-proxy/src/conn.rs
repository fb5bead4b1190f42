//! Facts about the client connection a request arrived on, and the one
//! interface every connection hands its requests to ([`RequestHandler`]):
//! the listener's plain connections and the TLS connections inside
//! intercepted tunnels both serve through it, so a tunnel never needs to
//! name the exchange that serves its requests.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;

use crate::body::ProxyBody;
use crate::timeouts::write_stall::WriteStall;

/// A client's socket as every connection holds it: its writes bounded by
/// the write-stall timeout and the minimum transfer rate.
pub type ClientSocket = WriteStall<tokio::net::TcpStream>;

/// Facts about the client connection a request arrived on (one whose
/// address the rules allow: others are refused at accept).
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// Set on the TLS connection inside an intercepted CONNECT tunnel.
    pub intercepted: Option<Intercepted>,
    /// A load balancer speaking for itself (a PROXY header naming no
    /// client) from an address the client rules do not allow: only its
    /// health checks are answered.
    pub health_checks_only: bool,
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

/// Answers one request that arrived on a connection. Failures are pages,
/// never errors: a connection is never dropped for a request's sake.
pub trait RequestHandler: Clone + Send + Sync + 'static {
    /// Takes the handler by value (it is cheap to clone), so the future
    /// borrows nothing from the connection that calls it.
    fn handle(
        self,
        conn: Arc<ConnInfo>,
        req: Request<Incoming>,
    ) -> impl Future<Output = Response<ProxyBody>> + Send + 'static;
}
