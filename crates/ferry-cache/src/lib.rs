//! The HTTP cache: RFC 9111 policy, on-disk storage with a memory tier,
//! collapsed forwarding and eviction. No sockets live here.

pub mod cli;
