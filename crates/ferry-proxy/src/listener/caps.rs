//! The connection caps (in all, and per client address), counted from
//! accept to close, and the refusal a connection over a cap (or from a
//! client the rules refuse) gets: a fixed page naming the rule, written
//! without parsing the request (its first bytes are only skipped).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::pages::raw_error_response;

/// Open connections, in all and per client address.
#[derive(Debug)]
pub struct ConnectionCaps {
    max_total: usize,
    max_per_client: usize,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

/// A connection counted against the caps until it drops.
#[derive(Debug)]
pub struct Counted {
    caps: Arc<ConnectionCaps>,
    client: IpAddr,
}

impl Drop for Counted {
    fn drop(&mut self) {
        if let Ok(mut open) = self.caps.open.lock() {
            open.total = open.total.saturating_sub(1);
            if let Some(n) = open.per_client.get_mut(&self.client) {
                *n -= 1;
                if *n == 0 {
                    open.per_client.remove(&self.client);
                }
            }
        }
    }
}

impl ConnectionCaps {
    pub fn new(max_total: usize, max_per_client: usize) -> Arc<ConnectionCaps> {
        Arc::new(ConnectionCaps {
            max_total,
            max_per_client,
            open: Mutex::new(Open::default()),
        })
    }

    /// Counts a new connection from `client`, or says which cap it hits.
    pub fn admit(self: &Arc<Self>, client: IpAddr) -> Result<Counted, &'static str> {
        let mut open = self
            .open
            .lock()
            .map_err(|_| "connection caps unavailable")?;
        if open.total >= self.max_total {
            return Err("the proxy has as many connections open as it takes (max-connections)");
        }
        let mine = open.per_client.entry(client).or_insert(0);
        if *mine >= self.max_per_client {
            return Err(
                "your address has as many connections open as one client may (max-connections-per-client)",
            );
        }
        *mine += 1;
        open.total += 1;
        Ok(Counted {
            caps: self.clone(),
            client,
        })
    }
}

/// Answers with the refusal page and closes, without parsing the request.
/// The client's first bytes are taken in and thrown away first (until the
/// end of a request head, at most 16 KiB or one second): an HTTP client
/// that gets an answer before it has sent its request reports a broken
/// connection instead of the page. Whatever follows is drained briefly (at
/// most 64 KiB, two seconds) so the close does not reset the connection
/// before the client has read the page.
pub async fn refuse(mut stream: TcpStream, status: StatusCode, cause: &str) {
    let page = raw_error_response(status, cause);
    // On the heap: this future is part of every connection's task (a
    // refusal may come at any time), so an array here would be 4 KiB held
    // by every idle connection.
    let mut sink = vec![0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let mut seen: Vec<u8> = Vec::new();
        let mut total = 0;
        while total < 16 * 1024 {
            let n = stream.read(&mut sink).await?;
            if n == 0 {
                break;
            }
            total += n;
            // Only the last bytes matter for spotting the end of the head.
            let keep = seen.len().saturating_sub(3);
            seen.drain(..keep);
            seen.extend_from_slice(&sink[..n]);
            if seen.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        Ok::<(), std::io::Error>(())
    })
    .await;
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        stream.write_all(&page).await?;
        stream.shutdown().await?;
        let mut drained = 0;
        while drained < 64 * 1024 {
            match stream.read(&mut sink).await? {
                0 => break,
                n => drained += n,
            }
        }
        Ok::<(), std::io::Error>(())
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_count_per_client_and_in_all() {
        let caps = ConnectionCaps::new(3, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let a1 = caps.admit(a).unwrap();
        let _a2 = caps.admit(a).unwrap();
        assert!(caps.admit(a).unwrap_err().contains("per-client"));
        let _b1 = caps.admit(b).unwrap();
        assert!(caps.admit(b).unwrap_err().contains("max-connections)"));
        drop(a1);
        let _b2 = caps.admit(b).unwrap();
    }
}
