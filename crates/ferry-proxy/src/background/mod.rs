//! Work the proxy does on its own, off the request path: keeping the
//! subscribed block lists fresh (`subscriptions`) and the daily quota
//! counts on disk (`quota_saver`).

pub mod quota_saver;
pub mod subscriptions;
