//! HTTP/1.1 exchanges with plain-HTTP origins, driven by the request's own
//! task. hyper-util's pooled client gives every upstream connection a task
//! of its own: a request crosses to it through a channel, the response head
//! comes back through another and the body through a third, each hand-off
//! a wake-up of the other task (often on the other core). Here the request's
//! task polls the connection itself — while it waits for the response head,
//! and then whenever the body is asked for its next frame — so a miss costs
//! one task's work, as a hit does. Idle connections wait in a small pool
//! per origin, not polled; one the origin closed meanwhile is noticed when
//! taken (its end of stream is read then) or, in a race, by the caller's
//! repeat of an idempotent request. HTTPS origins (ALPN may choose HTTP/2)
//! stay on the pooled client.

use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Mutex, Once};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::{PathAndQuery, Uri};
use http::{HeaderValue, Request, Response, header};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_rustls::MaybeHttpsStream;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::pool_cap::Capped;
use super::request_body::UpstreamBody;
use crate::body::BoxError;

/// A connection as the connector makes it.
pub type Io = Capped<MaybeHttpsStream<TokioIo<TcpStream>>>;

type Conn = http1::Connection<Io, UpstreamBody>;

/// How often idle connections past the idle limit are closed.
const SWEEP_EVERY: Duration = Duration::from_secs(15);

/// A connection with no exchange in progress.
struct Idle {
    sender: http1::SendRequest<UpstreamBody>,
    conn: Pin<Box<Conn>>,
    since: Instant,
}

/// Idle connections per origin (`host:port`).
pub struct DrivenPool {
    idle: Mutex<HashMap<String, Vec<Idle>>>,
    max_idle_per_origin: usize,
    idle_timeout: Duration,
    sweeper: Once,
}

/// Why an exchange failed: the connect (the connector's error), or the
/// exchange on a connection (hyper's).
#[derive(Debug)]
pub enum DrivenError {
    Connect(BoxError),
    Exchange(hyper::Error),
}

impl DrivenPool {
    pub fn new(max_idle_per_origin: usize, idle_timeout: Duration) -> Arc<DrivenPool> {
        Arc::new(DrivenPool {
            idle: Mutex::new(HashMap::new()),
            max_idle_per_origin,
            idle_timeout,
            sweeper: Once::new(),
        })
    }

    /// Sends `req` (absolute-form URI) on an idle connection to its origin,
    /// or on a new one from `connect`, and waits for the response head.
    pub async fn send<C, F>(
        self: &Arc<Self>,
        req: Request<UpstreamBody>,
        connect: C,
    ) -> Result<Response<DrivenBody>, DrivenError>
    where
        C: FnOnce(Uri) -> F,
        F: Future<Output = Result<Io, BoxError>>,
    {
        let origin = origin_key(req.uri());
        let (sender, conn, reusable) = match self.take(&origin) {
            Some(idle) => (idle.sender, idle.conn, true),
            // Boxed: opening a connection is the rare case, and its state
            // (socket, handshake) would otherwise make every exchange's
            // future, and each one awaiting it, kilobytes larger.
            None => Box::pin(open(connect(req.uri().clone()))).await?,
        };
        self.exchange(req, origin, sender, conn, reusable).await
    }

    async fn exchange(
        self: &Arc<Self>,
        mut req: Request<UpstreamBody>,
        origin: String,
        mut sender: http1::SendRequest<UpstreamBody>,
        conn: Pin<Box<Conn>>,
        reusable: bool,
    ) -> Result<Response<DrivenBody>, DrivenError> {
        to_origin_form(&mut req);
        let mut conn = Some(conn);
        let sending = sender.send_request(req);
        tokio::pin!(sending);
        let head = poll_fn(|cx| {
            loop {
                if let Poll::Ready(result) = sending.as_mut().poll(cx) {
                    return Poll::Ready(result);
                }
                match conn.as_mut().map(|c| c.as_mut().poll(cx)) {
                    // The connection ended: dropping it answers the request
                    // with the reason, on the next poll of `sending`.
                    Some(Poll::Ready(_)) => conn = None,
                    Some(Poll::Pending) => return Poll::Pending,
                    None => return Poll::Pending,
                }
            }
        })
        .await;
        let response = head.map_err(DrivenError::Exchange)?;
        Ok(response.map(|body| DrivenBody {
            body,
            held: conn.map(|conn| Held {
                sender,
                conn,
                pool: reusable.then(|| self.clone()),
                origin,
            }),
        }))
    }

    /// An idle connection to `origin` still open, the most recent first.
    fn take(&self, origin: &str) -> Option<Idle> {
        let mut idle = self.idle.lock().ok()?;
        let list = idle.get_mut(origin)?;
        while let Some(mut candidate) = list.pop() {
            if candidate.since.elapsed() >= self.idle_timeout || !candidate.sender.is_ready() {
                continue;
            }
            // Reads what the origin sent while the connection was idle: its
            // close ends the connection here, before a request is lost on it.
            let mut cx = Context::from_waker(Waker::noop());
            if candidate.conn.as_mut().poll(&mut cx).is_pending() {
                return Some(candidate);
            }
        }
        None
    }

    fn put_back(
        self: &Arc<Self>,
        origin: String,
        sender: http1::SendRequest<UpstreamBody>,
        conn: Pin<Box<Conn>>,
    ) {
        self.start_sweeper();
        let Ok(mut idle) = self.idle.lock() else {
            return;
        };
        let list = idle.entry(origin).or_default();
        if list.len() < self.max_idle_per_origin {
            list.push(Idle {
                sender,
                conn,
                since: Instant::now(),
            });
        }
    }

    /// Closes idle connections past the idle limit now and then, so an
    /// origin not asked again does not keep its connections open.
    fn start_sweeper(self: &Arc<Self>) {
        self.sweeper.call_once(|| {
            let pool = Arc::downgrade(self);
            tokio::spawn(async move {
                let mut every = tokio::time::interval(SWEEP_EVERY);
                every.tick().await;
                loop {
                    every.tick().await;
                    let Some(pool) = pool.upgrade() else {
                        return;
                    };
                    let Ok(mut idle) = pool.idle.lock() else {
                        return;
                    };
                    let limit = pool.idle_timeout;
                    idle.retain(|_, list| {
                        list.retain(|c| c.since.elapsed() < limit && !c.sender.is_closed());
                        !list.is_empty()
                    });
                }
            });
        });
    }
}

/// A new connection from `connecting`, handshaken, and whether it may be
/// pooled (one over the bound on pooled connections is used once, closed).
async fn open<F>(
    connecting: F,
) -> Result<(http1::SendRequest<UpstreamBody>, Pin<Box<Conn>>, bool), DrivenError>
where
    F: Future<Output = Result<Io, BoxError>>,
{
    let io = connecting.await.map_err(DrivenError::Connect)?;
    let reusable = io.is_counted();
    let (sender, conn) = http1::handshake(io)
        .await
        .map_err(|e| DrivenError::Connect(Box::new(e)))?;
    Ok((sender, Box::pin(conn), reusable))
}

/// `host:port` of an absolute-form URI, lowercase.
fn origin_key(uri: &Uri) -> String {
    let host = uri.host().unwrap_or_default();
    let mut digits = itoa::Buffer::new();
    let port = digits.format(uri.port_u16().unwrap_or(80));
    // Sized once: this runs for every request to a plain-HTTP origin.
    let mut key = String::with_capacity(host.len() + 1 + port.len());
    key.extend(host.chars().map(|c| c.to_ascii_lowercase()));
    key.push(':');
    key.push_str(port);
    key
}

/// What an origin (not a proxy) expects on the request line: the path and
/// query, with `Host` naming the origin.
fn to_origin_form(req: &mut Request<UpstreamBody>) {
    if !req.headers().contains_key(header::HOST) {
        if let Some(value) = req
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        {
            req.headers_mut().insert(header::HOST, value);
        }
    }
    let path = req
        .uri()
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let mut parts = http::uri::Parts::default();
    parts.path_and_query = Some(path);
    if let Ok(uri) = Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
}

/// The connection of an exchange in progress, given back to the pool when
/// its response body has been read to the end.
struct Held {
    sender: http1::SendRequest<UpstreamBody>,
    conn: Pin<Box<Conn>>,
    /// `None` for a connection beyond the bound on pooled ones.
    pool: Option<Arc<DrivenPool>>,
    origin: String,
}

/// A response body whose connection is polled as the body is read.
pub struct DrivenBody {
    body: Incoming,
    held: Option<Held>,
}

impl DrivenBody {
    /// Polls the connection: it reads what the body is waiting for.
    fn drive(&mut self, cx: &mut Context<'_>) {
        if let Some(held) = self.held.as_mut() {
            if held.conn.as_mut().poll(cx).is_ready() {
                // Closed (or failed): the body learns why from its channel.
                self.held = None;
            }
        }
    }

    /// The body has ended: once the connection has finished the exchange
    /// (it is ready for another request), it goes back to the pool.
    fn release(&mut self, cx: &mut Context<'_>) {
        self.drive(cx);
        if let Some(held) = self.held.take() {
            if let (Some(pool), true) = (held.pool, held.sender.is_ready()) {
                pool.put_back(held.origin, held.sender, held.conn);
            }
        }
    }
}

impl Body for DrivenBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        // The body first (it tells the connection it wants data), then the
        // connection (it reads and hands the data over), then the body again.
        let mut polled = Pin::new(&mut this.body).poll_frame(cx);
        if polled.is_pending() {
            this.drive(cx);
            polled = Pin::new(&mut this.body).poll_frame(cx);
        }
        match &polled {
            Poll::Ready(None) => this.release(cx),
            Poll::Ready(Some(Ok(_))) if this.body.is_end_stream() => this.release(cx),
            Poll::Ready(Some(Err(_))) => this.held = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for DrivenBody {
    fn drop(&mut self) {
        // A body with no bytes left (a 304, a HEAD, a length reached) may be
        // dropped unpolled: its connection can still go back to the pool.
        if self.held.is_some() && self.body.is_end_stream() {
            self.release(&mut Context::from_waker(Waker::noop()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::request_body::no_body;

    #[test]
    fn connections_are_pooled_per_lowercased_host_and_port() {
        let key = |uri: &str| origin_key(&uri.parse().unwrap());
        assert_eq!(key("http://Example.TEST:8080/a?b"), "example.test:8080");
        assert_eq!(key("http://example.test/"), "example.test:80");
        assert_eq!(key("http://[::1]:81/"), "[::1]:81");
        assert_eq!(key("http://127.0.0.1/"), "127.0.0.1:80");
    }

    /// Every miss awaits this future (inside several more), and each await
    /// and the box around the miss copy it whole: opening a connection, the
    /// rare case, is boxed so the common one stays small. With the opening
    /// inline it was 4.2 KB.
    #[test]
    fn an_exchange_keeps_a_small_future() {
        type Connecting = Pin<Box<dyn Future<Output = Result<Io, BoxError>> + Send>>;
        let pool = DrivenPool::new(1, Duration::from_secs(1));
        let sending = pool.send(Request::new(no_body()), |_uri| -> Connecting {
            Box::pin(async { Err("not opened".into()) })
        });
        let size = std::mem::size_of_val(&sending);
        assert!(size <= 2048, "{size} bytes");
    }
}
