//! TLS interception: the local certificate authority users install so the
//! proxy can see (and cache) HTTPS requests inside CONNECT tunnels. Off
//! unless asked for.

pub mod ca;
pub mod inner;
pub mod mint;
