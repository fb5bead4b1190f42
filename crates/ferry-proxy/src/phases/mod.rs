//! The request's phases that take the proxy's state: the policy checks
//! (`policy`), forwarding to an origin (`forward`), the cache's part
//! (`caching`), CONNECT tunnels (`tunnel`) and the TLS connections inside
//! intercepted ones (`intercepted`). Each is a plain function of
//! `&ProxyState` and the request; `crate::exchange` calls them in order.

pub mod caching;
pub mod forward;
pub mod intercepted;
pub mod policy;
pub mod tunnel;
