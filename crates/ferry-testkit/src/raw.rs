//! An origin on a raw socket, for tests about what goes over the wire: it
//! keeps every byte each connection delivered and frames requests the way a
//! strict HTTP/1.1 server does (`Content-Length`, else chunked, else no
//! body), so a proxy that sends framing headers that do not match the body
//! shows up as a wrong request or a connection left with unparsed bytes.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as the raw origin framed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRequest {
    /// Which connection it came on, from 0.
    pub conn: usize,
    /// The request line, e.g. `GET /a HTTP/1.1`.
    pub line: String,
    /// Header lines as sent (name, value), in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawRequest {
    pub fn method(&self) -> &str {
        self.line.split(' ').next().unwrap_or("")
    }

    pub fn path(&self) -> &str {
        self.line.split(' ').nth(1).unwrap_or("")
    }

    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the raw origin answers: status, extra headers, body (it adds
/// `Content-Length`).
#[derive(Debug, Clone)]
pub struct RawReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Answer nothing: reset the connection instead (as a server does whose
    /// idle timer fired just as the request arrived).
    pub hang_up: bool,
    /// Bytes written after the body, unasked (a hostile origin's second
    /// response, meant for whoever uses the connection next).
    pub after: Vec<u8>,
}

impl RawReply {
    pub fn ok(body: impl Into<Vec<u8>>) -> RawReply {
        RawReply {
            status: 200,
            headers: Vec::new(),
            body: body.into(),
            hang_up: false,
            after: Vec::new(),
        }
    }

    /// Reset the connection without an answer.
    pub fn hang_up() -> RawReply {
        RawReply {
            hang_up: true,
            ..RawReply::ok("")
        }
    }

    pub fn status(mut self, status: u16) -> RawReply {
        self.status = status;
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> RawReply {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Writes `bytes` after the body, as part of the same write.
    pub fn then_send(mut self, bytes: impl Into<Vec<u8>>) -> RawReply {
        self.after = bytes.into();
        self
    }
}

type RawHandler = dyn Fn(&RawRequest) -> RawReply + Send + Sync;

#[derive(Default)]
struct Log {
    /// Every byte received, per connection.
    bytes: Vec<Vec<u8>>,
    requests: Vec<RawRequest>,
    /// Connections that closed with bytes that did not make a whole request.
    leftovers: Vec<(usize, Vec<u8>)>,
}

/// A running raw origin on 127.0.0.1. Stops when dropped.
pub struct RawOrigin {
    addr: SocketAddr,
    log: Arc<Mutex<Log>>,
    accept: tokio::task::JoinHandle<()>,
}

impl RawOrigin {
    pub async fn start(handler: impl Fn(&RawRequest) -> RawReply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let log = Arc::new(Mutex::new(Log::default()));
        let handler: Arc<RawHandler> = Arc::new(handler);
        let accept = {
            let log = log.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let conn = {
                        let mut log = log.lock().unwrap();
                        log.bytes.push(Vec::new());
                        log.bytes.len() - 1
                    };
                    tokio::spawn(serve(stream, conn, log.clone(), handler.clone()));
                }
            })
        };
        RawOrigin { addr, log, accept }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.addr.port(), path)
    }

    pub fn requests(&self) -> Vec<RawRequest> {
        self.log.lock().unwrap().requests.clone()
    }

    /// Every byte each connection delivered, as text (lossy).
    pub fn wire(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .bytes
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    /// Bytes that closed connections left unparsed, per connection.
    pub fn leftovers(&self) -> Vec<(usize, Vec<u8>)> {
        self.log.lock().unwrap().leftovers.clone()
    }
}

impl Drop for RawOrigin {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn serve(mut stream: TcpStream, conn: usize, log: Arc<Mutex<Log>>, handler: Arc<RawHandler>) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        while let Some((request, used)) = parse(&buf, conn) {
            buf.drain(..used);
            log.lock().unwrap().requests.push(request.clone());
            let reply = handler(&request);
            if reply.hang_up {
                // Linger 0: the close is a reset, as when unread bytes remain.
                let _ = stream.set_zero_linger();
                return;
            }
            let head_only = request.method() == "HEAD";
            if stream.write_all(&encode(&reply, head_only)).await.is_err() {
                return;
            }
        }
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => {
                if !buf.is_empty() {
                    log.lock().unwrap().leftovers.push((conn, buf));
                }
                return;
            }
            Ok(n) => n,
        };
        log.lock().unwrap().bytes[conn].extend_from_slice(&chunk[..n]);
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn encode(reply: &RawReply, head_only: bool) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {} X\r\n", reply.status);
    for (n, v) in &reply.headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", reply.body.len()));
    let mut out = out.into_bytes();
    if !head_only && reply.status != 304 {
        out.extend_from_slice(&reply.body);
    }
    out.extend_from_slice(&reply.after);
    out
}

/// Frames one request at the start of `buf`: `(request, bytes used)`, or
/// `None` until it is complete.
fn parse(buf: &[u8], conn: usize) -> Option<(RawRequest, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or("").to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let start = end + 4;
    let (body, used) = if find("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        dechunk(&buf[start..]).map(|(body, n)| (body, start + n))?
    } else {
        let len: usize = find("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if buf.len() < start + len {
            return None;
        }
        (buf[start..start + len].to_vec(), start + len)
    };
    Some((
        RawRequest {
            conn,
            line,
            headers,
            body,
        },
        used,
    ))
}

fn dechunk(mut buf: &[u8]) -> Option<(Vec<u8>, usize)> {
    let total = buf.len();
    let mut body = Vec::new();
    loop {
        let eol = buf.windows(2).position(|w| w == b"\r\n")?;
        let size_text = String::from_utf8_lossy(&buf[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        buf = &buf[eol + 2..];
        if size == 0 {
            // No trailers: the final CRLF.
            if buf.len() < 2 {
                return None;
            }
            buf = &buf[2..];
            return Some((body, total - buf.len()));
        }
        if buf.len() < size + 2 {
            return None;
        }
        body.extend_from_slice(&buf[..size]);
        buf = &buf[size + 2..];
    }
}
