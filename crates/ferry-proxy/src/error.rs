//! What can go wrong, as types. [`ProxyError`] is a request's failure, sorted
//! by where the fault lies (the client's request, the proxy's rules, the
//! origin, or the proxy itself); [`ProxyError::response`] is the one place
//! that turns it into a status, an error page and `X-Ferry-Error`.
//! [`StartupError`] is why the proxy could not start at all, and never
//! reaches a client.

use std::net::SocketAddr;

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use crate::access::{AclError, Refusal};
use crate::body::ProxyBody;
use crate::config::ConfigError;
use crate::intercept::MintError;
use crate::outcome::{Failure, RuleKind, UpstreamCause};
use crate::pages::error_page;
use crate::upstream::{AdmissionError, TlsSetupError, UpstreamError};

/// Why one request could not be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The client's request cannot be served as sent.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The proxy's rules refuse it.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The origin could not be reached, or did not answer properly.
    #[error(transparent)]
    Upstream(UpstreamError),
    /// The proxy itself cannot take it now.
    #[error(transparent)]
    Internal(#[from] InternalError),
}

/// Faults in the client's request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    #[error("only http:// and https:// URLs can be fetched")]
    UnsupportedScheme,
    #[error("CONNECT needs a host:port target")]
    ConnectWithoutTarget,
    #[error("CONNECT needs a port (host:port)")]
    ConnectWithoutPort,
    #[error(
        "this is Ferry, an HTTP proxy: ask it for absolute URLs (curl -x http://this-proxy URL)"
    )]
    UnknownPage,
    #[error("not in the cache")]
    NotCached,
    #[error("CONNECT inside an intercepted tunnel is not supported")]
    NestedConnect,
    #[error("not in the cache, and the request allows only cached responses (only-if-cached)")]
    OnlyIfCached,
    #[error("the form could not be read")]
    BadForm,
    /// The proxy's own pages were asked for under a name that is not the
    /// proxy's (DNS rebinding looks like this).
    #[error(
        "{host} is not a name of this proxy: its pages answer to its addresses, localhost and its --public-name names"
    )]
    NotOwnName { host: String },
    #[error(
        "{host} is not a host name or an IP address; CONNECT needs one (write addresses as a.b.c.d)"
    )]
    BadConnectHost { host: String },
    /// The client's request body was malformed (its chunked framing, say):
    /// the fault is the client's, whatever the origin then made of it.
    #[error("the request body could not be read: {detail}")]
    BadBody { detail: String },
}

/// Refusals by the proxy's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// An access rule: client address, destination, CONNECT port.
    #[error("{0}")]
    Refused(Refusal),
    /// Users are configured and the request has no valid credentials;
    /// `challenge` is the `Proxy-Authenticate` value.
    #[error("this proxy requires a user name and password (Proxy-Authorization)")]
    AuthRequired { challenge: String },
    /// Too many failed attempts from this client lately.
    #[error("too many failed logins from your address; wait a little before trying again")]
    AuthBackedOff { challenge: String },
    #[error("request loop: this request has already passed through this proxy (Via)")]
    Loop,
    /// A dashboard action without the token of a page this proxy served.
    #[error(
        "the form's token does not match this proxy's page: reload the dashboard and try again"
    )]
    BadCsrfToken,
    /// The client's share of its group's daily quota is spent.
    #[error(
        "the daily quota of the group {group} ({quota} a day for each client) is spent; it starts again at midnight ({resets})"
    )]
    QuotaSpent {
        group: std::sync::Arc<str>,
        quota: String,
        resets: String,
        resets_in_secs: u64,
    },
    /// A dashboard action posted by a page that is not the proxy's own.
    #[error(
        "this action was sent by another site's page ({origin}); only the proxy's own pages may send it"
    )]
    ForeignPage { origin: String },
}

/// The proxy's own limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InternalError {
    #[error(transparent)]
    Admission(#[from] AdmissionError),
    #[error("too many tunnels are open (max-tunnels); try again shortly")]
    TooManyTunnels,
    #[error("the proxy is busy checking passwords; try again shortly")]
    AuthBusy,
}

impl From<Refusal> for ProxyError {
    fn from(refusal: Refusal) -> Self {
        ProxyError::Policy(PolicyError::Refused(refusal))
    }
}

impl From<UpstreamError> for ProxyError {
    /// A connection the network policy refused is the policy's refusal.
    fn from(e: UpstreamError) -> Self {
        match e {
            UpstreamError::Forbidden(refusal) => refusal.into(),
            other => ProxyError::Upstream(other),
        }
    }
}

impl From<AdmissionError> for ProxyError {
    fn from(e: AdmissionError) -> Self {
        ProxyError::Internal(InternalError::Admission(e))
    }
}

impl ProxyError {
    /// What the access record, the metrics and the dashboard keep of it.
    pub fn failure(&self) -> Failure {
        match self {
            ProxyError::Request(_) => Failure::Request,
            ProxyError::Policy(PolicyError::Refused(refusal)) => {
                Failure::Policy(rule_kind(refusal))
            }
            ProxyError::Policy(
                PolicyError::AuthRequired { .. } | PolicyError::AuthBackedOff { .. },
            ) => Failure::Policy(RuleKind::Auth),
            ProxyError::Policy(PolicyError::Loop) => Failure::Policy(RuleKind::Loop),
            ProxyError::Policy(PolicyError::QuotaSpent { .. }) => Failure::Policy(RuleKind::Quota),
            ProxyError::Policy(PolicyError::BadCsrfToken | PolicyError::ForeignPage { .. }) => {
                Failure::Policy(RuleKind::Client)
            }
            ProxyError::Upstream(e) => Failure::Upstream(upstream_cause(e)),
            ProxyError::Internal(_) => Failure::Internal,
        }
    }

    /// The HTTP status the client gets.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::Request(RequestError::UnknownPage | RequestError::NotCached) => {
                StatusCode::NOT_FOUND
            }
            ProxyError::Request(RequestError::NotOwnName { .. }) => StatusCode::MISDIRECTED_REQUEST,
            // RFC 9111 §5.2.1.7.
            ProxyError::Request(RequestError::OnlyIfCached) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Request(_) => StatusCode::BAD_REQUEST,
            ProxyError::Policy(
                PolicyError::Refused(_) | PolicyError::BadCsrfToken | PolicyError::ForeignPage { .. },
            ) => StatusCode::FORBIDDEN,
            ProxyError::Policy(
                PolicyError::AuthRequired { .. } | PolicyError::AuthBackedOff { .. },
            ) => StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            ProxyError::Policy(PolicyError::Loop) => StatusCode::LOOP_DETECTED,
            ProxyError::Policy(PolicyError::QuotaSpent { .. }) => StatusCode::TOO_MANY_REQUESTS,
            ProxyError::Upstream(
                UpstreamError::ConnectTimeout { .. }
                | UpstreamError::ResponseTimeout { .. }
                | UpstreamError::BodyTimeout { .. }
                | UpstreamError::TooSlow { .. }
                // RFC 9111 §4.2.4: a disconnected cache that may not serve
                // its stale copy says so with 504.
                | UpstreamError::CannotRevalidate(_),
            ) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ProxyError::Internal(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The page the client gets for `url`: the status, the cause in plain
    /// words (also in `X-Ferry-Error`), the headers the status calls for,
    /// and on the pages of the proxy's own rules (refusals, a spent quota)
    /// the operator's `contact` line.
    pub fn response(&self, url: &str, contact: Option<&str>) -> Response<ProxyBody> {
        let contact = contact.filter(|_| matches!(self, ProxyError::Policy(_)));
        let mut resp = error_page(self.status(), url, &self.to_string(), contact);
        let headers = resp.headers_mut();
        match self {
            ProxyError::Internal(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            ProxyError::Policy(PolicyError::QuotaSpent { resets_in_secs, .. }) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*resets_in_secs));
            }
            ProxyError::Policy(
                PolicyError::AuthRequired { challenge } | PolicyError::AuthBackedOff { challenge },
            ) => {
                if let Ok(v) = HeaderValue::from_str(challenge) {
                    headers.insert(header::PROXY_AUTHENTICATE, v);
                }
            }
            _ => {}
        }
        resp
    }
}

/// Which kind of rule a refusal comes from.
fn rule_kind(refusal: &Refusal) -> RuleKind {
    match refusal {
        Refusal::ClientNotAllowed { .. } | Refusal::NotAdmin { .. } => RuleKind::Client,
        Refusal::DomainDenied { .. } | Refusal::NotInAllowList { .. } => RuleKind::Domain,
        Refusal::PortNotAllowed { .. } => RuleKind::Port,
        Refusal::NetworkDenied { .. }
        | Refusal::NotInNetworkAllowList { .. }
        | Refusal::LinkLocal { .. }
        | Refusal::ThisHost { .. } => RuleKind::Network,
        Refusal::GroupDenied { .. } | Refusal::NotInGroupAllowList { .. } => RuleKind::Group,
    }
}

/// The cause of an origin's failure.
fn upstream_cause(e: &UpstreamError) -> UpstreamCause {
    match e {
        UpstreamError::Dns { .. } => UpstreamCause::Dns,
        UpstreamError::Refused { .. } | UpstreamError::Connect { .. } => UpstreamCause::Connect,
        UpstreamError::ConnectTimeout { .. }
        | UpstreamError::ResponseTimeout { .. }
        | UpstreamError::BodyTimeout { .. } => UpstreamCause::Timeout,
        UpstreamError::Tls { .. } => UpstreamCause::Tls,
        UpstreamError::TooSlow { .. } => UpstreamCause::TooSlow,
        UpstreamError::CannotRevalidate(inner) => upstream_cause(inner),
        _ => UpstreamCause::Protocol,
    }
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Acl(#[from] AclError),
    #[error(transparent)]
    Groups(#[from] crate::groups::group::GroupError),
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot open access log {path}: {source}")]
    AccessLog {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error("TLS interception: {0}")]
    Intercept(#[from] MintError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(e: impl Into<ProxyError>) -> u16 {
        e.into().status().as_u16()
    }

    #[test]
    fn statuses_follow_where_the_fault_lies() {
        let host = || String::from("h");
        assert_eq!(status(RequestError::UnsupportedScheme), 400);
        assert_eq!(status(RequestError::UnknownPage), 404);
        assert_eq!(status(RequestError::OnlyIfCached), 504);
        assert_eq!(
            status(Refusal::PortNotAllowed { port: 25 }),
            403,
            "access rules"
        );
        assert_eq!(status(PolicyError::Loop), 508);
        assert_eq!(
            status(PolicyError::AuthRequired {
                challenge: "Basic realm=\"x\"".into()
            }),
            407
        );
        assert_eq!(
            status(UpstreamError::Dns {
                host: host(),
                detail: String::new()
            }),
            502
        );
        assert_eq!(status(UpstreamError::Refused { host: host() }), 502);
        assert_eq!(
            status(UpstreamError::ResponseTimeout {
                host: host(),
                secs: 1
            }),
            504
        );
        assert_eq!(status(AdmissionError::QueueFull), 503);
        assert_eq!(status(InternalError::TooManyTunnels), 503);
    }

    #[test]
    fn responses_carry_the_cause_and_the_headers_their_status_needs() {
        let resp = ProxyError::from(AdmissionError::TimedOut).response("http://a.test/", None);
        assert_eq!(resp.status(), 503);
        assert_eq!(resp.headers()["retry-after"], "5");
        assert_eq!(
            resp.headers()["x-ferry-error"],
            AdmissionError::TimedOut.to_string()
        );
        let resp = ProxyError::from(PolicyError::AuthRequired {
            challenge: "Basic realm=\"ferry\"".into(),
        })
        .response("http://a.test/", None);
        assert_eq!(
            resp.headers()["proxy-authenticate"],
            "Basic realm=\"ferry\""
        );
        let refused = Refusal::NotAdmin {
            client: "192.0.2.1".parse().unwrap(),
        };
        let resp = ProxyError::from(refused).response("http://a.test/", None);
        assert_eq!(resp.status(), 403);
        assert!(
            resp.headers()["x-ferry-error"]
                .to_str()
                .unwrap()
                .contains("admin-client")
        );
    }
}
