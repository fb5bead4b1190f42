//! What operators see of the traffic, fed from each request's
//! [`AccessRecord`](crate::outcome::AccessRecord): the access log's writer
//! (`access_log`) and its line formats (`log_line`), the Prometheus metrics
//! (`metrics`, with lock-free histograms in `histogram`), and the recent
//! activity the dashboard draws (`activity`, read as the `report` types).
//! Needs only the vocabulary below it; the pages that show it are in
//! `crate::own_pages`.

pub mod access_log;
pub mod activity;
pub mod histogram;
pub mod log_line;
pub mod metrics;
pub mod report;

pub use access_log::AccessLog;
pub use activity::Activity;
pub use metrics::{Metrics, StateCollector};
