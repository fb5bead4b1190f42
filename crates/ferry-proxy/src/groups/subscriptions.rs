//! The subscribed lists in force, and what is known about each: the entries
//! of its last good copy, when it was fetched, and the last error. A new
//! `ListSet` is built for each change and swapped in whole, so a lookup
//! never sees a list half replaced, and a fetch that fails or parses to
//! nothing leaves the last good copy in force.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use crate::access::acl::DomainSet;

/// One subscribed list as it stands.
#[derive(Debug, Clone, Default)]
pub struct ListStatus {
    /// The last good copy's domains (empty until one is had).
    pub domains: Arc<DomainSet>,
    pub entries: usize,
    /// Lines of the last good copy that were not a domain rule.
    pub skipped: usize,
    /// When the last good copy was fetched (or saved, if read from disk).
    pub last_success: Option<SystemTime>,
    /// The last fetch's failure, if the last fetch failed.
    pub last_error: Option<String>,
    pub last_attempt: Option<SystemTime>,
}

/// Every subscribed list, by name.
#[derive(Debug, Clone, Default)]
pub struct ListSet {
    lists: HashMap<String, Arc<ListStatus>>,
}

impl ListSet {
    /// The domains of the list `name`'s last good copy, if it has one.
    pub fn domains(&self, name: &str) -> Option<&DomainSet> {
        self.lists
            .get(name)
            .map(|s| &*s.domains)
            .filter(|d| !d.is_empty())
    }

    pub fn status(&self, name: &str) -> Option<&Arc<ListStatus>> {
        self.lists.get(name)
    }

    /// This set with `name`'s status replaced.
    pub fn with(&self, name: &str, status: ListStatus) -> ListSet {
        let mut lists = self.lists.clone();
        lists.insert(name.to_string(), Arc::new(status));
        ListSet { lists }
    }
}
