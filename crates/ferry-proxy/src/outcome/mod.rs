//! What happened to a request, as plain values every layer above shares:
//! what the cache did (`cache`), what the request came to as a whole
//! (`request`), what failed (`failure`), and the record the access log and
//! the metrics keep (`record`). Nothing here knows how a request is served;
//! headers, log lines and metric labels are all derived from these values.

pub mod cache;
pub mod failure;
pub mod record;
pub mod request;

pub use cache::{BypassReason, CacheOutcome, Fwd, StaleServed};
pub use failure::{ErrorSource, Failure, RuleKind, UpstreamCause};
pub use record::AccessRecord;
pub use request::{ByteSource, RequestKind, RequestOutcome};
