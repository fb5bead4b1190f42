//! Fetching one URL through the proxy: a fresh HTTP/1.1 connection to the
//! proxy (hyper's low-level `client::conn::http1`), a `GET` whose request-target
//! is the absolute URL (`GET https://host/path HTTP/1.1` too: the proxy fetches
//! `https://` itself and can cache it, there is no CONNECT tunnel), redirects
//! followed hop by hop through the proxy, and the body read chunk by chunk with
//! an idle timeout. Nothing here connects to an origin directly.

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use percent_encoding::percent_decode_str;
use tokio::net::TcpStream;
use tokio::time::timeout;
use url::Url;

use crate::error::ClientError;
use crate::proxy_env::{ProxyEndpoint, ProxySelector};

/// Limits for one fetch.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// For the TCP connection to the proxy.
    pub connect_timeout: Duration,
    /// The longest wait for the response head or for the next body chunk.
    pub idle_timeout: Duration,
    /// How many redirects are followed (0: none).
    pub max_redirects: usize,
}

/// A response whose head has arrived; the body is read with [`Fetched::next_chunk`].
#[derive(Debug)]
pub struct Fetched {
    /// The URL that answered (after redirects).
    pub url: Url,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub proxy: ProxyEndpoint,
    /// Body bytes read so far.
    pub received: u64,
    body: Incoming,
    idle_timeout: Duration,
}

/// Turns what the user typed into a URL to fetch: `http://` is assumed when
/// there is no scheme; only `http` and `https` are fetched; the fragment is dropped.
pub fn parse_target(input: &str) -> Result<Url, ClientError> {
    let bad = |reason: String| ClientError::BadUrl {
        input: input.to_string(),
        reason,
    };
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(bad("empty".into()));
    }
    let with_scheme = if trimmed.contains("://") {
        trimmed.to_string()
    } else {
        format!("http://{trimmed}")
    };
    let mut url = Url::parse(&with_scheme).map_err(|e| bad(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!(
            "scheme {}:// is not supported (only http:// and https://)",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host".into()));
    }
    url.set_fragment(None);
    Ok(url)
}

/// Fetches `url` through the proxy chosen by `selector`, following redirects.
pub async fn fetch(
    url: &Url,
    selector: &ProxySelector,
    opts: &FetchOptions,
) -> Result<Fetched, ClientError> {
    let mut url = url.clone();
    let mut hops = 0;
    loop {
        let proxy = selector.select(&url)?;
        let response = send(&url, &proxy, opts).await?;
        let status = response.status();
        if is_redirect(status) && opts.max_redirects > 0 {
            if hops == opts.max_redirects {
                return Err(ClientError::TooManyRedirects(hops));
            }
            url = redirect_target(&url, status, response.headers())?;
            hops += 1;
            continue;
        }
        let (parts, body) = response.into_parts();
        return Ok(Fetched {
            url,
            status,
            headers: parts.headers,
            proxy,
            received: 0,
            body,
            idle_timeout: opts.idle_timeout,
        });
    }
}

impl Fetched {
    /// The next piece of the body, `None` at its end.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, ClientError> {
        loop {
            let frame = match timeout(self.idle_timeout, self.body.frame()).await {
                Err(_) => {
                    return Err(ClientError::Timeout {
                        proxy: self.proxy.display(),
                        secs: self.idle_timeout.as_secs(),
                        stage: "reading the body",
                    });
                }
                Ok(None) => return Ok(None),
                Ok(Some(Err(source))) => {
                    return Err(ClientError::Interrupted {
                        bytes: self.received,
                        source,
                    });
                }
                Ok(Some(Ok(frame))) => frame,
            };
            // Trailers are skipped.
            if let Ok(data) = frame.into_data() {
                self.received += data.len() as u64;
                return Ok(Some(data));
            }
        }
    }

    /// Reads at most `limit` bytes of the body (for error pages).
    pub async fn read_up_to(&mut self, limit: usize) -> Vec<u8> {
        let mut out = Vec::new();
        while out.len() < limit {
            match self.next_chunk().await {
                Ok(Some(chunk)) => {
                    let take = chunk.len().min(limit - out.len());
                    out.extend_from_slice(&chunk[..take]);
                }
                _ => break,
            }
        }
        out
    }

    /// The `Content-Type` header, if readable.
    pub fn content_type(&self) -> Option<&str> {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
    }

    /// The `Content-Length` header, if valid.
    pub fn content_length(&self) -> Option<u64> {
        self.headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
    }
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

fn redirect_target(
    from: &Url,
    status: StatusCode,
    headers: &HeaderMap,
) -> Result<Url, ClientError> {
    let bad = |reason: String| ClientError::BadRedirect { status, reason };
    let location = headers
        .get(header::LOCATION)
        .ok_or_else(|| bad("no Location header".into()))?
        .to_str()
        .map_err(|_| bad("Location is not text".into()))?;
    let mut next = from
        .join(location)
        .map_err(|e| bad(format!("{location:?}: {e}")))?;
    if !matches!(next.scheme(), "http" | "https") {
        return Err(bad(format!("{location:?}: not http(s)")));
    }
    next.set_fragment(None);
    Ok(next)
}

/// One request on a fresh connection to the proxy; returns when the head arrives.
async fn send(
    url: &Url,
    proxy: &ProxyEndpoint,
    opts: &FetchOptions,
) -> Result<http::Response<Incoming>, ClientError> {
    let request = build_request(url, proxy)?;
    let stream = match timeout(
        opts.connect_timeout,
        TcpStream::connect((proxy.host.as_str(), proxy.port)),
    )
    .await
    {
        Err(_) => {
            return Err(ClientError::Timeout {
                proxy: proxy.display(),
                secs: opts.connect_timeout.as_secs(),
                stage: "connecting",
            });
        }
        Ok(Err(source)) => {
            return Err(ClientError::ProxyUnreachable {
                proxy: proxy.display(),
                origin: proxy.origin,
                source,
            });
        }
        Ok(Ok(stream)) => stream,
    };
    let _ = stream.set_nodelay(true);
    let protocol = |source| ClientError::ProxyProtocol {
        proxy: proxy.display(),
        source,
    };
    let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .map_err(protocol)?;
    // Drives the connection; it ends when the response body is dropped or read out.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    match timeout(opts.idle_timeout, sender.send_request(request)).await {
        Err(_) => Err(ClientError::Timeout {
            proxy: proxy.display(),
            secs: opts.idle_timeout.as_secs(),
            stage: "waiting for the response",
        }),
        Ok(result) => result.map_err(protocol),
    }
}

/// `GET <absolute URL>` with `Host`, and the proxy's and origin's credentials
/// when given (origin credentials come from `user:pass@` in the URL and are
/// removed from the request-target).
pub fn build_request(
    url: &Url,
    proxy: &ProxyEndpoint,
) -> Result<Request<Empty<Bytes>>, ClientError> {
    let bad = |reason: String| ClientError::BadUrl {
        input: url.to_string(),
        reason,
    };
    let mut target = url.clone();
    let origin_auth = if target.username().is_empty() && target.password().is_none() {
        None
    } else {
        let user = percent_decode_str(target.username())
            .decode_utf8_lossy()
            .into_owned();
        let pass = percent_decode_str(target.password().unwrap_or(""))
            .decode_utf8_lossy()
            .into_owned();
        let _ = target.set_username("");
        let _ = target.set_password(None);
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        ))
    };
    let host = target.host_str().ok_or_else(|| bad("no host".into()))?;
    let host_header = match target.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    let uri: http::Uri = target
        .as_str()
        .parse()
        .map_err(|e: http::uri::InvalidUri| bad(e.to_string()))?;
    let mut builder = Request::builder()
        .method(Method::GET)
        .uri(uri)
        .header(header::HOST, host_header)
        .header(
            header::USER_AGENT,
            concat!("ferry/", env!("CARGO_PKG_VERSION")),
        )
        .header(header::ACCEPT, "*/*");
    if let Some(auth) = &proxy.authorization {
        let value = HeaderValue::from_str(auth).map_err(|e| ClientError::BadProxy {
            input: proxy.display(),
            origin: proxy.origin,
            reason: e.to_string(),
        })?;
        builder = builder.header(header::PROXY_AUTHORIZATION, value);
    }
    if let Some(auth) = origin_auth {
        builder = builder.header(header::AUTHORIZATION, auth);
    }
    builder.body(Empty::new()).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let cases: &[(&str, Option<&str>)] = &[
            ("http://example.com/a", Some("http://example.com/a")),
            ("example.com", Some("http://example.com/")),
            (
                "localhost:8080/x?y=1#frag",
                Some("http://localhost:8080/x?y=1"),
            ),
            ("https://Example.COM/é", Some("https://example.com/%C3%A9")),
            ("  http://e.com/ ", Some("http://e.com/")),
            ("ftp://e.com/f", None),
            ("file:///etc/passwd", None),
            ("http://", None),
            ("", None),
            ("http://exa mple.com/", None),
            ("http://e.com:99999/", None),
        ];
        for (input, want) in cases {
            let got = parse_target(input).ok().map(|u| u.to_string());
            assert_eq!(got.as_deref(), *want, "{input:?}");
        }
    }

    #[test]
    fn requests_use_absolute_form_and_credentials() {
        let proxy = ProxyEndpoint::parse("http://a:b@127.0.0.1:1", "--proxy").unwrap();
        let url = parse_target("https://u:p%40ss@example.com:8443/x?y").unwrap();
        let req = build_request(&url, &proxy).unwrap();
        assert_eq!(req.uri().to_string(), "https://example.com:8443/x?y");
        assert_eq!(req.headers()[header::HOST], "example.com:8443");
        assert_eq!(req.headers()[header::PROXY_AUTHORIZATION], "Basic YTpi");
        // base64("u:p@ss")
        assert_eq!(req.headers()[header::AUTHORIZATION], "Basic dTpwQHNz");

        let proxy = ProxyEndpoint::parse("127.0.0.1:1", "--proxy").unwrap();
        let req = build_request(&parse_target("http://e.com/").unwrap(), &proxy).unwrap();
        assert_eq!(req.uri().to_string(), "http://e.com/");
        assert_eq!(req.headers()[header::HOST], "e.com");
        assert!(req.headers().get(header::PROXY_AUTHORIZATION).is_none());
    }

    #[test]
    fn redirects_resolve_relative_locations() {
        let from = Url::parse("http://e.com/a/b?q").unwrap();
        let mut h = HeaderMap::new();
        h.insert(header::LOCATION, HeaderValue::from_static("../c#x"));
        assert_eq!(
            redirect_target(&from, StatusCode::FOUND, &h)
                .unwrap()
                .as_str(),
            "http://e.com/c"
        );
        h.insert(
            header::LOCATION,
            HeaderValue::from_static("javascript:alert(1)"),
        );
        assert!(redirect_target(&from, StatusCode::FOUND, &h).is_err());
        assert!(redirect_target(&from, StatusCode::FOUND, &HeaderMap::new()).is_err());
    }
}
