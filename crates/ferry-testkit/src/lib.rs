//! Shared test helpers: a scriptable origin server ([`Origin`]), a TLS test CA
//! ([`TestCa`]), a launcher for the real `ferry proxy` binary ([`Proxy`]) and a
//! small client that talks to a proxy in absolute form ([`ProxyClient`]), and
//! an origin on a raw socket that records every byte it receives
//! ([`RawOrigin`]).
//!
//! Everything binds to 127.0.0.1 with port 0; nothing here reaches the internet.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod client;
mod origin;
mod proxy;
mod raw;
mod tls;

pub use client::{ProxyClient, TestResponse, raw_exchange};
pub use origin::{Gate, Origin, Recorded, Reply, pattern_bytes};
pub use proxy::Proxy;
pub use raw::{RawOrigin, RawReply, RawRequest};
pub use tls::TestCa;

/// Polls `cond` every 10 ms until it holds or `limit` passes; returns whether it held.
/// Used to wait for a state change without asserting on wall-clock time.
pub async fn wait_until(limit: std::time::Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
