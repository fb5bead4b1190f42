//! Destination rules by network, checked against the addresses a connection
//! actually goes to (after DNS, inside the upstream connector), so a name
//! that resolves to a walled-off address is refused however it is spelled,
//! and a name cannot change its answer between a check and the connect.
//!
//! The order: `deny_networks` refuse; `allow_networks` admit (and, when any
//! is given, nothing else is admitted); then the defaults: link-local
//! addresses (cloud metadata services live there) are refused, and this
//! host's own addresses (loopback, unspecified, its interfaces) are for
//! clients on this host only.

use std::net::IpAddr;

use ipnet::IpNet;

use super::refusal::Refusal;
use crate::host::canonical_ip;

/// The network rules and what this host's own addresses are.
#[derive(Debug, Clone, Default)]
pub struct NetworkPolicy {
    pub deny: Vec<IpNet>,
    pub allow: Vec<IpNet>,
    /// This host's interface addresses.
    pub own: Vec<IpAddr>,
}

impl NetworkPolicy {
    /// The rules, with this host's interface addresses read now.
    pub fn for_this_host(deny: Vec<IpNet>, allow: Vec<IpNet>) -> NetworkPolicy {
        let own = match if_addrs::get_if_addrs() {
            Ok(interfaces) => interfaces.iter().map(|i| canonical_ip(i.ip())).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot list this host's addresses; only loopback is treated as this host");
                Vec::new()
            }
        };
        NetworkPolicy { deny, allow, own }
    }

    /// May a client (on this host or not) have a connection opened to `addr`?
    pub fn check(&self, addr: IpAddr, client_is_local: bool) -> Result<(), Refusal> {
        let addr = canonical_ip(addr);
        if let Some(net) = self.deny.iter().find(|n| n.contains(&addr)) {
            return Err(Refusal::NetworkDenied {
                addr,
                rule: net.to_string(),
            });
        }
        if self.allow.iter().any(|n| n.contains(&addr)) {
            return Ok(());
        }
        if !self.allow.is_empty() {
            return Err(Refusal::NotInNetworkAllowList { addr });
        }
        if is_link_local(addr) {
            return Err(Refusal::LinkLocal { addr });
        }
        if !client_is_local && self.is_this_host(addr) {
            return Err(Refusal::ThisHost { addr });
        }
        Ok(())
    }

    fn is_this_host(&self, addr: IpAddr) -> bool {
        addr.is_loopback()
            || addr.is_unspecified()
            || matches!(addr, IpAddr::V4(v4) if v4.octets()[0] == 0)
            || self.own.contains(&addr)
    }
}

/// Whether a client connects from this host (loopback).
pub fn is_local_client(client: IpAddr) -> bool {
    canonical_ip(client).is_loopback()
}

fn is_link_local(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// Who a client is for fair shares: its IPv4 address, or its IPv6 /64
/// (one host usually holds a whole /64, and could otherwise claim many shares).
pub fn canonical_client(ip: IpAddr) -> IpAddr {
    match canonical_ip(ip) {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn defaults_wall_off_link_local_and_this_host_from_remote_clients() {
        let policy = NetworkPolicy {
            own: vec![ip("192.0.2.2")],
            ..Default::default()
        };
        let remote = false;
        let local = true;
        for addr in ["169.254.169.254", "fe80::1", "::ffff:169.254.169.254"] {
            assert!(policy.check(ip(addr), local).is_err(), "{addr}");
        }
        for addr in [
            "127.0.0.1",
            "127.9.9.9",
            "::1",
            "0.0.0.0",
            "0.1.2.3",
            "::",
            "192.0.2.2",
            "::ffff:127.0.0.1",
        ] {
            assert!(policy.check(ip(addr), remote).is_err(), "{addr}");
            assert!(policy.check(ip(addr), local).is_ok(), "{addr}");
        }
        assert!(policy.check(ip("93.184.216.34"), remote).is_ok());
    }

    #[test]
    fn explicit_rules_come_first() {
        let policy = NetworkPolicy {
            deny: vec!["10.0.0.0/8".parse().unwrap()],
            allow: vec![
                "169.254.169.254/32".parse().unwrap(),
                "127.0.0.1/32".parse().unwrap(),
                "10.1.0.0/16".parse().unwrap(),
            ],
            own: vec![],
        };
        assert!(
            matches!(
                policy.check(ip("10.1.2.3"), true),
                Err(Refusal::NetworkDenied { .. })
            ),
            "deny wins"
        );
        assert!(policy.check(ip("169.254.169.254"), false).is_ok());
        assert!(policy.check(ip("127.0.0.1"), false).is_ok());
        assert!(matches!(
            policy.check(ip("93.184.216.34"), true),
            Err(Refusal::NotInNetworkAllowList { .. })
        ));
    }
}
