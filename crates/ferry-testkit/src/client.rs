//! A minimal HTTP/1.1 client for tests that sends requests to a proxy in
//! absolute form (`GET http://host/path HTTP/1.1`), one connection per request,
//! plus a raw-bytes exchange for malformed-input tests.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, Clone)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl TestResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

#[derive(Clone, Debug)]
pub struct ProxyClient {
    proxy: SocketAddr,
    bind: Option<std::net::IpAddr>,
}

impl ProxyClient {
    pub fn new(proxy: SocketAddr) -> Self {
        ProxyClient { proxy, bind: None }
    }

    /// Connects from this local address (e.g. 127.0.0.2 for client-ACL tests).
    pub fn bind(mut self, local: std::net::IpAddr) -> Self {
        self.bind = Some(local);
        self
    }

    pub async fn get(&self, url: &str) -> TestResponse {
        self.send(Method::GET, url, &[], Bytes::new()).await
    }

    pub async fn get_with(&self, url: &str, headers: &[(&str, &str)]) -> TestResponse {
        self.send(Method::GET, url, headers, Bytes::new()).await
    }

    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> TestResponse {
        self.try_send(method, url, headers, body)
            .await
            .expect("request through proxy")
    }

    /// Like [`send`](Self::send) but reports connection-level failures instead of panicking.
    pub async fn try_send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<TestResponse, String> {
        let stream = self.connect().await.map_err(|e| format!("connect: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(conn);
        let mut builder = Request::builder().method(method).uri(url);
        let host_given = headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host"));
        if !host_given {
            if let Ok(uri) = url.parse::<http::Uri>() {
                if let Some(auth) = uri.authority() {
                    builder = builder.header("host", auth.as_str());
                }
            }
        }
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let req = builder
            .body(Full::new(body.into()))
            .map_err(|e| format!("request: {e}"))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("send: {e}"))?;
        let (parts, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        Ok(TestResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    async fn connect(&self) -> std::io::Result<TcpStream> {
        match self.bind {
            None => TcpStream::connect(self.proxy).await,
            Some(ip) => {
                let socket = if ip.is_ipv4() {
                    tokio::net::TcpSocket::new_v4()?
                } else {
                    tokio::net::TcpSocket::new_v6()?
                };
                // A port bound before connecting must be unused by every
                // socket on that address, TIME_WAIT ones included: without
                // reuse, a few thousand short requests exhaust the range.
                socket.set_reuseaddr(true)?;
                socket.bind(SocketAddr::new(ip, 0))?;
                socket.connect(self.proxy).await
            }
        }
    }
}

/// Writes `request` to `addr` and reads until the peer closes or `limit` passes
/// without data. Returns what was read and whether the peer closed the connection.
pub async fn raw_exchange(addr: SocketAddr, request: &[u8], limit: Duration) -> (Vec<u8>, bool) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout(limit, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (out, true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (out, false),
        }
    }
}
