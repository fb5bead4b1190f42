//! Talking to origins, without the proxy's state: the pooled HTTP/1.1 +
//! HTTP/2 client with its TLS settings and failure causes (`client`), the
//! plain-HTTP exchanges driven by the request's own task (`driven`), the
//! request bodies sent upstream (`request_body`), the
//! resolver that applies the network rules to the addresses it connects to
//! (`resolver`), the certificate authorities it trusts (`trust`), the bound on pooled connections (`pool_cap`), the bounded
//! fetch slots and their FIFO queue (`admission`), and the body relay with
//! its timeouts (`relay`). The request phases that use them are in
//! `crate::phases::forward`.

pub mod admission;
pub mod client;
mod driven;
pub mod pool_cap;
pub mod relay;
mod request_body;
pub mod resolver;
pub mod trust;

pub use admission::{Admission, AdmissionError, AdmissionStats, ClientQueue, Slot};
pub use client::{OriginBody, Upstream, UpstreamError, is_idempotent};
pub use pool_cap::PoolCap;
pub use relay::{FrameSink, Relay};
pub use request_body::{UpstreamBody, no_body, whole_body};
pub use trust::TlsSetupError;
