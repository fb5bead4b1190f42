//! The upstream client: pooled connections to origins over HTTP/1.1 or HTTP/2
//! (chosen by ALPN), TLS by rustls with the web roots plus configured extra CAs,
//! timeouts on connecting and on waiting for response headers, and failures
//! sorted into causes a person can act on.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, Uri, Version};
use http_body::Body as _;
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;

use super::driven::{DrivenBody, DrivenError, DrivenPool};
use super::pool_cap::{Capped, PoolCap};
use super::request_body::{ReplayBody, UpstreamBody, full_body, no_body};
use super::resolver::{self, GuardedResolver, Refused};
use super::trust::{TlsSetupError, tls_config};
use crate::access::{NetworkPolicy, Refusal};
use crate::body::BoxError;
use crate::config::UpstreamRoots;

/// Why an upstream exchange failed, in the words the error page uses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    #[error("DNS lookup failed for {host}: {detail}")]
    Dns { host: String, detail: String },
    #[error("connection refused by {host}")]
    Refused { host: String },
    #[error("could not connect to {host} within {secs} s")]
    ConnectTimeout { host: String, secs: u64 },
    #[error("TLS handshake with {host} failed: {detail}")]
    Tls { host: String, detail: String },
    #[error("could not connect to {host}: {detail}")]
    Connect { host: String, detail: String },
    #[error("{host} sent no response headers within {secs} s")]
    ResponseTimeout { host: String, secs: u64 },
    #[error("{host} stopped sending the response body for {secs} s")]
    BodyTimeout { host: String, secs: u64 },
    #[error("{host} sent less than {min_bytes} bytes in {secs} s of waiting (min-transfer-bytes)")]
    TooSlow {
        host: String,
        min_bytes: u64,
        secs: u64,
    },
    #[error("{host} closed the connection or sent an invalid response: {detail}")]
    Protocol { host: String, detail: String },
    /// The network policy refused the address the name resolved to.
    #[error("{0}")]
    Forbidden(Refusal),
    /// A stored copy needed revalidating, the origin could not be reached,
    /// and the copy's own directives forbid serving it stale (RFC 9111
    /// §4.2.4: `must-revalidate`, `proxy-revalidate`, `no-cache`, `s-maxage`).
    #[error(
        "the stored copy must be revalidated before use, and the origin could not be reached: {0}"
    )]
    CannotRevalidate(Box<UpstreamError>),
}

type Connector = GuardedConnector<HttpsConnector<HttpConnector<GuardedResolver>>>;

/// How long an idle upstream connection is kept, and how many per origin.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
const POOL_MAX_IDLE_PER_HOST: usize = 64;

/// Plain-HTTP origins: the driven exchanges' pool and its connector.
#[derive(Clone)]
struct Plain {
    pool: Arc<DrivenPool>,
    connector: Connector,
}

/// A response body from an origin, by the client that fetched it.
pub enum OriginBody {
    Pooled(Incoming),
    Driven(DrivenBody),
}

impl http_body::Body for OriginBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            OriginBody::Pooled(body) => Pin::new(body).poll_frame(cx),
            OriginBody::Driven(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            OriginBody::Pooled(body) => body.is_end_stream(),
            OriginBody::Driven(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self {
            OriginBody::Pooled(body) => body.size_hint(),
            OriginBody::Driven(body) => body.size_hint(),
        }
    }
}

/// The upstream client. Clients on the proxy's own host and other clients
/// get separate connection pools: the network policy treats them apart (only
/// local clients may reach this host's addresses), and a pooled connection
/// made for one must never serve the other. Plain-HTTP origins are served
/// by exchanges the request's own task drives (`super::driven`); HTTPS
/// origins by hyper-util's pooled client (HTTP/2 when ALPN says so).
#[derive(Clone)]
pub struct Upstream {
    local: Client<Connector, UpstreamBody>,
    remote: Client<Connector, UpstreamBody>,
    local_plain: Plain,
    remote_plain: Plain,
    policy: Arc<NetworkPolicy>,
    pool_cap: Arc<PoolCap>,
    connect_timeout: Duration,
    response_timeout: Duration,
}

impl Upstream {
    pub fn new(
        roots: UpstreamRoots,
        extra_ca: &[PathBuf],
        connect_timeout: Duration,
        response_timeout: Duration,
        policy: Arc<NetworkPolicy>,
        max_pooled: usize,
    ) -> Result<Upstream, TlsSetupError> {
        let tls = tls_config(roots, extra_ca)?;
        // One bound for both pools.
        let pool_cap = PoolCap::new(max_pooled);
        let connector = |client_is_local| {
            let resolver = GuardedResolver::new(policy.clone(), client_is_local);
            let mut http = HttpConnector::new_with_resolver(resolver);
            http.enforce_http(false);
            http.set_nodelay(true);
            http.set_connect_timeout(Some(connect_timeout));
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls.clone())
                .https_or_http()
                .enable_http1()
                .enable_http2()
                .wrap_connector(http);
            GuardedConnector {
                inner: https,
                timeout: connect_timeout,
                policy: policy.clone(),
                client_is_local,
                pool_cap: pool_cap.clone(),
            }
        };
        let build = |client_is_local| {
            Client::builder(TokioExecutor::new())
                .pool_timer(TokioTimer::new())
                .timer(TokioTimer::new())
                .pool_idle_timeout(POOL_IDLE_TIMEOUT)
                .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
                .build(connector(client_is_local))
        };
        let plain = |client_is_local| Plain {
            pool: DrivenPool::new(POOL_MAX_IDLE_PER_HOST, POOL_IDLE_TIMEOUT),
            connector: connector(client_is_local),
        };
        Ok(Upstream {
            local: build(true),
            remote: build(false),
            local_plain: plain(true),
            remote_plain: plain(false),
            policy: policy.clone(),
            pool_cap,
            connect_timeout,
            response_timeout,
        })
    }

    /// The bound on reusable connections, for the metrics.
    pub fn pool_cap(&self) -> Arc<PoolCap> {
        self.pool_cap.clone()
    }

    pub fn response_timeout(&self) -> Duration {
        self.response_timeout
    }

    /// Sends `req` for a client on this host or not, and waits for the
    /// response head (bounded by the response timeout).
    pub async fn send(
        &self,
        req: Request<UpstreamBody>,
        client_is_local: bool,
    ) -> Result<Response<OriginBody>, UpstreamError> {
        // The origin's name as errors show it, made only for an error.
        let authority = req.uri().authority().cloned();
        let host = || {
            authority
                .as_ref()
                .map(|a| a.to_string())
                .unwrap_or_default()
        };
        // A pooled connection the origin closed while this request was on its
        // way fails without an answer (servers close idle connections on
        // their own clock: Node and Apache after 5 s). An idempotent request
        // (RFC 9110 §9.2.2) whose body is empty or was read whole is sent
        // once more, on a new connection, as browsers and Squid do; anything
        // else could have had an effect and is reported instead.
        let resend = RetryHead::of(&req);
        let deadline = tokio::time::Instant::now() + self.response_timeout;
        let outcome = if req.uri().scheme() == Some(&http::uri::Scheme::HTTP) {
            let plain = if client_is_local {
                &self.local_plain
            } else {
                &self.remote_plain
            };
            tokio::time::timeout_at(deadline, plain.send_once_more_if_closed(req, resend))
                .await
                .map(|sent| {
                    sent.map(|resp| resp.map(OriginBody::Driven))
                        .map_err(|e| match e {
                            DrivenError::Connect(e) => {
                                classify(&*e, true, &host(), self.connect_timeout)
                            }
                            DrivenError::Exchange(e) => {
                                classify(&e, false, &host(), self.connect_timeout)
                            }
                        })
                })
        } else {
            let client = if client_is_local {
                &self.local
            } else {
                &self.remote
            };
            let exchange = async {
                let outcome = client.request(req).await;
                match (&resend, &outcome) {
                    (Some(head), Err(err)) if closed_before_answer(err, err.is_connect()) => {
                        client.request(head.request()).await
                    }
                    _ => outcome,
                }
            };
            tokio::time::timeout_at(deadline, exchange)
                .await
                .map(|sent| {
                    sent.map(|resp| resp.map(OriginBody::Pooled))
                        .map_err(|e| classify(&e, e.is_connect(), &host(), self.connect_timeout))
                })
        };
        match outcome {
            Ok(result) => result,
            Err(_) => Err(UpstreamError::ResponseTimeout {
                host: host(),
                secs: self.response_timeout.as_secs(),
            }),
        }
    }

    /// Checks that the network rules let this client reach `host:port`,
    /// without connecting: an intercepted CONNECT is answered before any
    /// request inside it goes upstream, and a refusal belongs to the CONNECT.
    pub async fn check_reachable(
        &self,
        host: &str,
        port: u16,
        client_is_local: bool,
    ) -> Result<(), UpstreamError> {
        match tokio::time::timeout(
            self.connect_timeout,
            self.allowed_addrs(host, port, client_is_local),
        )
        .await
        {
            Ok(result) => result.map(drop),
            Err(_) => Err(UpstreamError::ConnectTimeout {
                host: format!("{host}:{port}"),
                secs: self.connect_timeout.as_secs(),
            }),
        }
    }

    /// The addresses `host` resolves to that the network rules allow.
    async fn allowed_addrs(
        &self,
        host: &str,
        port: u16,
        client_is_local: bool,
    ) -> Result<Vec<std::net::SocketAddr>, UpstreamError> {
        let addrs: Vec<_> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| UpstreamError::Dns {
                host: host.to_string(),
                detail: dns_detail(&e.to_string()),
            })?
            .collect();
        resolver::allowed(&self.policy, client_is_local, addrs).map_err(UpstreamError::Forbidden)
    }

    /// Opens a raw TCP connection for a CONNECT tunnel (DNS and connect bounded
    /// by the connect timeout), classifying failures like [`send`](Self::send).
    pub async fn connect_tunnel(
        &self,
        host: &str,
        port: u16,
        client_is_local: bool,
    ) -> Result<TcpStream, UpstreamError> {
        let target = format!("{host}:{port}");
        let attempt = async {
            let addrs = self.allowed_addrs(host, port, client_is_local).await?;
            let mut last = None;
            for addr in addrs {
                match TcpStream::connect(addr).await {
                    Ok(stream) => return Ok(stream),
                    Err(e) => last = Some(e),
                }
            }
            Err(match last {
                Some(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    UpstreamError::Refused {
                        host: target.clone(),
                    }
                }
                Some(e) => UpstreamError::Connect {
                    host: target.clone(),
                    detail: e.to_string(),
                },
                None => UpstreamError::Dns {
                    host: host.to_string(),
                    detail: "no addresses".into(),
                },
            })
        };
        match tokio::time::timeout(self.connect_timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(UpstreamError::ConnectTimeout {
                host: target,
                secs: self.connect_timeout.as_secs(),
            }),
        }
    }
}

impl Plain {
    /// Sends `req`; when the connection ended before any answer, sends the
    /// request once more if `resend` allows it (see [`Upstream::send`]).
    async fn send_once_more_if_closed(
        &self,
        req: Request<UpstreamBody>,
        resend: Option<RetryHead>,
    ) -> Result<Response<DrivenBody>, DrivenError> {
        let outcome = self.send(req).await;
        match (&resend, &outcome) {
            (Some(head), Err(DrivenError::Exchange(e))) if closed_before_answer(e, false) => {
                self.send(head.request()).await
            }
            _ => outcome,
        }
    }

    async fn send(&self, req: Request<UpstreamBody>) -> Result<Response<DrivenBody>, DrivenError> {
        self.pool
            .send(req, |uri| {
                use tower_service::Service as _;
                // Cloned only when a connection is opened (its future owns
                // what it needs), not for every request on a pooled one.
                self.connector.clone().call(uri)
            })
            .await
    }
}

/// The head of a request that may be sent again: a safe method and no body.
struct RetryHead {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
    body: Option<ReplayBody>,
}

impl RetryHead {
    fn of(req: &Request<UpstreamBody>) -> Option<RetryHead> {
        if !is_idempotent(req.method()) {
            return None;
        }
        let body = req.extensions().get::<ReplayBody>().cloned();
        (body.is_some() || req.body().is_end_stream()).then(|| RetryHead {
            method: req.method().clone(),
            uri: req.uri().clone(),
            version: req.version(),
            headers: req.headers().clone(),
            body,
        })
    }

    fn request(&self) -> Request<UpstreamBody> {
        let body = match &self.body {
            Some(ReplayBody(bytes)) => full_body(bytes.clone()),
            None => no_body(),
        };
        let mut req = Request::new(body);
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.version_mut() = self.version;
        *req.headers_mut() = self.headers.clone();
        req
    }
}

/// RFC 9110 §9.2.2: the methods whose repetition has the effect of one.
pub fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// The connection ended before any response head arrived (not a connect
/// failure: that is retried by the connector's own address list).
fn closed_before_answer(err: &(dyn std::error::Error + 'static), is_connect: bool) -> bool {
    if is_connect {
        return false;
    }
    error_chain(err).iter().any(|e| {
        e.downcast_ref::<hyper::Error>()
            .is_some_and(|h| h.is_incomplete_message() || h.is_canceled())
            || e.downcast_ref::<std::io::Error>().is_some_and(|io| {
                matches!(
                    io.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                )
            })
    })
}

/// Sorts a client error into a cause. hyper-util reports connect failures as a
/// `ConnectError` whose message names the stage ("dns error", "tcp connect
/// error") with the io::Error below it; rustls errors arrive wrapped in io::Error.
fn classify(
    err: &(dyn std::error::Error + 'static),
    is_connect: bool,
    host: &str,
    connect_timeout: Duration,
) -> UpstreamError {
    let host = host.to_string();
    let chain = error_chain(err);
    let mut saw_dns = false;
    for e in &chain {
        if let Some(Refused(refusal)) = e.downcast_ref::<Refused>() {
            return UpstreamError::Forbidden(refusal.clone());
        }
        if let Some(tls) = find_rustls(*e) {
            return UpstreamError::Tls {
                host,
                detail: tls_detail(tls),
            };
        }
        if e.is::<ConnectTimedOut>() {
            return UpstreamError::ConnectTimeout {
                host,
                secs: connect_timeout.as_secs(),
            };
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return UpstreamError::Refused { host },
                std::io::ErrorKind::TimedOut if is_connect => {
                    return UpstreamError::ConnectTimeout {
                        host,
                        secs: connect_timeout.as_secs(),
                    };
                }
                _ => {}
            }
        }
        saw_dns |= e.to_string().starts_with("dns error");
    }
    let detail = chain
        .last()
        .map(|e| e.to_string())
        .unwrap_or_else(|| err.to_string());
    if saw_dns {
        return UpstreamError::Dns {
            host: host
                .rsplit_once(':')
                .map(|(h, _)| h.to_string())
                .unwrap_or(host),
            detail: dns_detail(&detail),
        };
    }
    if is_connect {
        return UpstreamError::Connect { host, detail };
    }
    UpstreamError::Protocol { host, detail }
}

/// getaddrinfo's messages are terse; say the common case plainly.
fn dns_detail(detail: &str) -> String {
    if detail.contains("Name or service not known") || detail.contains("No address associated") {
        "no such host".to_string()
    } else {
        detail.to_string()
    }
}

fn error_chain<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut out = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        out.push(e);
        // io::Error::source skips the error it wraps; step into it explicitly.
        cur = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    out
}

/// A TLS failure in words a user can act on, with rustls' own name for it
/// after (the certificate problems are what users meet most).
fn tls_detail(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    let plain = match e {
        rustls::Error::InvalidCertificate(cert) => match cert {
            C::Expired | C::ExpiredContext { .. } => Some("the site's certificate has expired"),
            C::NotValidYet | C::NotValidYetContext { .. } => {
                Some("the site's certificate is not valid yet")
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                Some("the site's certificate is for another name (name mismatch)")
            }
            C::UnknownIssuer => Some(
                "the site's certificate is signed by an authority the proxy does not trust (unknown issuer)",
            ),
            C::Revoked => Some("the site's certificate has been revoked"),
            C::BadSignature => Some("the site's certificate has a bad signature"),
            _ => None,
        },
        _ => None,
    };
    match plain {
        Some(plain) => format!("{plain} [{e}]"),
        None => e.to_string(),
    }
}

fn find_rustls<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    e.downcast_ref::<rustls::Error>()
}

/// Marks a connect (TCP + TLS) that took longer than the connect timeout.
#[derive(Debug)]
struct ConnectTimedOut;

impl std::fmt::Display for ConnectTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connect timed out")
    }
}

impl std::error::Error for ConnectTimedOut {}

/// Checks an IP-literal target against the network policy (names are
/// checked by the resolver), and bounds the whole connect, TLS handshake
/// included (HttpConnector's own timeout covers only TCP).
#[derive(Clone)]
struct GuardedConnector<C> {
    inner: C,
    timeout: Duration,
    policy: Arc<NetworkPolicy>,
    client_is_local: bool,
    pool_cap: Arc<PoolCap>,
}

impl tower_service::Service<Uri>
    for GuardedConnector<HttpsConnector<HttpConnector<GuardedResolver>>>
{
    type Response = Capped<MaybeHttpsStream<TokioIo<TcpStream>>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        if let Err(refused) = resolver::check_literal(&uri, &self.policy, self.client_is_local) {
            return Box::pin(async move { Err(Box::new(refused) as BoxError) });
        }
        let connecting = self.inner.call(uri);
        let timeout = self.timeout;
        let pool_cap = self.pool_cap.clone();
        Box::pin(async move {
            match tokio::time::timeout(timeout, connecting).await {
                Ok(result) => result.map(|stream| pool_cap.wrap(stream)),
                Err(_) => Err(Box::new(ConnectTimedOut) as BoxError),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_ca_file_is_a_clear_error() {
        let err = tls_config(
            UpstreamRoots::Bundled,
            &[PathBuf::from("/nonexistent/ca.pem")],
        )
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }
}
