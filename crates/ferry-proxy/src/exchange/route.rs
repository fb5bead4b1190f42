//! The routing phase: what a request is addressed to — the proxy's own
//! pages, a tunnel, or an origin.

use http::{Method, Request};

use crate::error::RequestError;
use crate::host::is_host_or_address;
use crate::state::ProxyState;

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// The proxy itself: its dashboard, metrics, health and PAC pages.
    Own,
    /// `CONNECT host:port`.
    Tunnel { host: String, port: u16 },
    /// An absolute `http://` or `https://` URL to fetch.
    Origin { host: String },
}

impl Route {
    /// Routes a request by its method and target.
    pub fn of<B>(state: &ProxyState, req: &Request<B>) -> Result<Route, RequestError> {
        let uri = req.uri();
        if req.method() == Method::CONNECT {
            let authority = uri.authority().ok_or(RequestError::ConnectWithoutTarget)?;
            let port = authority
                .port_u16()
                .ok_or(RequestError::ConnectWithoutPort)?;
            let host = authority.host();
            if !is_host_or_address(host) {
                return Err(RequestError::BadConnectHost {
                    host: host.chars().take(100).collect(),
                });
            }
            return Ok(Route::Tunnel {
                host: host.to_string(),
                port,
            });
        }
        let Some(authority) = uri.authority() else {
            // Origin form: the client is talking to the proxy as a web server.
            return Ok(Route::Own);
        };
        let default_port = match uri.scheme_str() {
            Some("http") => 80,
            Some("https") => 443,
            _ => return Err(RequestError::UnsupportedScheme),
        };
        let port = authority.port_u16().unwrap_or(default_port);
        if state.is_own_address(authority.host(), port) {
            return Ok(Route::Own);
        }
        Ok(Route::Origin {
            host: authority.host().to_string(),
        })
    }
}
