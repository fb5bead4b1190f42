//! What groups of clients may do, as plain data and pure functions: which
//! group a client is in and its own rules (`group`), the subscribed block
//! lists, their last good copies on disk (`lists`) and the set in force
//! (`subscriptions`), the days and hours
//! a group's deny rules apply (`schedule`), per-client transfer rates
//! (`rate`) and daily byte quotas kept across restarts (`quota`). The
//! request phases that apply them are in `crate::phases`; the refresh of
//! subscribed lists runs in `crate::background`.

pub mod clock;
pub mod group;
pub mod lists;
pub mod quota;
pub mod rate;
pub mod schedule;
pub mod subscriptions;
