//! What failed, as finely as the metrics and the dashboard tell failures
//! apart: plain labels, small and `Copy`, so the access record carries them.
//! `crate::error` sorts each error into one of these.

/// Where a failure came from, for logs and metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    Request,
    Policy,
    Upstream,
    Internal,
}

impl ErrorSource {
    pub const ALL: [ErrorSource; 4] = [
        ErrorSource::Request,
        ErrorSource::Policy,
        ErrorSource::Upstream,
        ErrorSource::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorSource::Request => "request",
            ErrorSource::Policy => "policy",
            ErrorSource::Upstream => "upstream",
            ErrorSource::Internal => "internal",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// What failed, as finely as the metrics and the dashboard tell failures
/// apart: the fault's side, with the kind of rule that refused or the cause
/// of an origin's failure. Small and `Copy`, so the access record carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Request,
    Policy(RuleKind),
    Upstream(UpstreamCause),
    Internal,
}

/// Which kind of access rule refused a request (`ferry_blocked_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    /// Client address rules (`allow_clients`, `admin_clients`).
    Client,
    /// Destination domain rules (`deny_domains`, `allow_domains`).
    Domain,
    /// Destination network rules and the defaults for link-local and this host.
    Network,
    /// CONNECT port rules.
    Port,
    /// Missing or wrong credentials.
    Auth,
    /// A request that already passed through this proxy.
    Loop,
    /// A group's own domain rules or subscribed lists.
    Group,
    /// A group's daily quota, spent.
    Quota,
}

impl RuleKind {
    pub const ALL: [RuleKind; 8] = [
        RuleKind::Client,
        RuleKind::Domain,
        RuleKind::Network,
        RuleKind::Port,
        RuleKind::Auth,
        RuleKind::Loop,
        RuleKind::Group,
        RuleKind::Quota,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Client => "client",
            RuleKind::Domain => "domain",
            RuleKind::Network => "network",
            RuleKind::Port => "port",
            RuleKind::Auth => "auth",
            RuleKind::Loop => "loop",
            RuleKind::Group => "group",
            RuleKind::Quota => "quota",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Why an origin fetch failed (`ferry_upstream_errors_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamCause {
    Dns,
    Connect,
    Timeout,
    Tls,
    Protocol,
    TooSlow,
}

impl UpstreamCause {
    pub const ALL: [UpstreamCause; 6] = [
        UpstreamCause::Dns,
        UpstreamCause::Connect,
        UpstreamCause::Timeout,
        UpstreamCause::Tls,
        UpstreamCause::Protocol,
        UpstreamCause::TooSlow,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamCause::Dns => "dns",
            UpstreamCause::Connect => "connect",
            UpstreamCause::Timeout => "timeout",
            UpstreamCause::Tls => "tls",
            UpstreamCause::Protocol => "protocol",
            UpstreamCause::TooSlow => "too_slow",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl Failure {
    pub fn source(self) -> ErrorSource {
        match self {
            Failure::Request => ErrorSource::Request,
            Failure::Policy(_) => ErrorSource::Policy,
            Failure::Upstream(_) => ErrorSource::Upstream,
            Failure::Internal => ErrorSource::Internal,
        }
    }
}
