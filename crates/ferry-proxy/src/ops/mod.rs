//! What operators see: the access log (one line a request), the metric
//! registry, and the pages the proxy serves about itself.

pub mod access_log;
pub mod activity;
pub mod ca_page;
pub mod dashboard;
pub mod histogram;
pub mod metrics;
