//! Why a request was refused, naming the rule: the refusal page, the log
//! and the metrics all read it from this one value.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

/// Why a request was refused; shown on the refusal page and in logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    ClientNotAllowed {
        client: IpAddr,
    },
    DomainDenied {
        host: String,
        pattern: String,
        origin: String,
    },
    NotInAllowList {
        host: String,
    },
    PortNotAllowed {
        port: u16,
    },
    NotAdmin {
        client: IpAddr,
    },
    /// The destination address is in a `deny_networks` entry.
    NetworkDenied {
        addr: IpAddr,
        rule: String,
    },
    /// `allow_networks` is given and the address is in none of them.
    NotInNetworkAllowList {
        addr: IpAddr,
    },
    /// Link-local addresses (cloud metadata services) are refused by default.
    LinkLocal {
        addr: IpAddr,
    },
    /// This host's own addresses are for clients on this host.
    ThisHost {
        addr: IpAddr,
    },
    /// A group's deny rule or subscribed list.
    GroupDenied {
        group: Arc<str>,
        host: String,
        pattern: String,
        origin: String,
    },
    /// The group has an allow list and the host is not on it.
    NotInGroupAllowList {
        group: Arc<str>,
        host: String,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::ClientNotAllowed { client } => {
                write!(f, "client address {client} is not in allow-client")
            }
            Refusal::DomainDenied {
                host,
                pattern,
                origin,
            } => write!(f, "{host} matches deny rule \"{pattern}\" ({origin})"),
            Refusal::NotInAllowList { host } => {
                write!(f, "{host} matches no rule of the allow list")
            }
            Refusal::NotAdmin { client } => write!(
                f,
                "client address {client} is not in admin-client: only admins may purge or inspect what is stored"
            ),
            Refusal::NetworkDenied { addr, rule } => {
                write!(f, "{addr} is in the denied network {rule} (deny-network)")
            }
            Refusal::NotInNetworkAllowList { addr } => {
                write!(f, "{addr} is in no network of allow-network")
            }
            Refusal::LinkLocal { addr } => write!(
                f,
                "{addr} is link-local (where cloud metadata services live); refused by default, allow-network opens it"
            ),
            Refusal::ThisHost { addr } => write!(
                f,
                "{addr} is the proxy's own host: only clients on that host may reach it (allow-network opens it)"
            ),
            Refusal::GroupDenied {
                group,
                host,
                pattern,
                origin,
            } => write!(
                f,
                "{host} matches \"{pattern}\" ({origin}), refused for the group {group}"
            ),
            Refusal::NotInGroupAllowList { group, host } => {
                write!(f, "{host} is not on the allow list of the group {group}")
            }
            Refusal::PortNotAllowed { port } => {
                write!(f, "CONNECT to port {port} is not allowed (connect-port)")
            }
        }
    }
}
