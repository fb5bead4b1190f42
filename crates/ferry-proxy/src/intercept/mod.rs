//! TLS interception: the local certificate authority users install so the
//! proxy can see (and cache) HTTPS requests inside CONNECT tunnels. Off
//! unless asked for.

pub mod ca;
pub mod inner;
pub mod mint;
pub mod passthrough;

/// What the proxy needs to intercept: the leaves, and the client-and-site
/// pairs currently passed through.
pub struct Interception {
    pub minter: mint::Minter,
    pub passthrough: passthrough::AutoPassthrough,
}
