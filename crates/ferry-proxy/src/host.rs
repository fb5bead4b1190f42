//! Host names and IP literals: every spelling of an address the system
//! resolver accepts (`2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`,
//! `::ffff:127.0.0.1`), so rules match an address however it is written;
//! what a valid host name is; and the names this proxy's own pages answer
//! to ([`OwnNames`]).

use std::net::{IpAddr, Ipv4Addr};

/// Lower case, no trailing dot, brackets kept off IPv6 literals.
pub fn normalize_host(host: &str) -> String {
    host.trim()
        .trim_end_matches('.')
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

/// An IPv4 address seen as IPv6 (`::ffff:a.b.c.d`) is an IPv4 address.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The address `host` names if it is an IP literal in any form the system
/// resolver (`inet_aton`) accepts, or an IPv6 literal (bracketed or not).
pub fn parse_ip_literal(host: &str) -> Option<IpAddr> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(canonical_ip(ip));
    }
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut values = Vec::with_capacity(parts.len());
    for part in &parts {
        values.push(parse_inet_number(part)?);
    }
    let (last, leading) = values.split_last()?;
    if leading.iter().any(|&v| v > 255) {
        return None;
    }
    let last_bits = 8 * (5 - parts.len() as u32);
    if last_bits < 32 && *last >= 1u64 << last_bits {
        return None;
    }
    if *last > u64::from(u32::MAX) {
        return None;
    }
    let mut addr: u32 = 0;
    for (i, v) in leading.iter().enumerate() {
        addr |= (*v as u32) << (24 - 8 * i as u32);
    }
    addr |= *last as u32;
    Some(IpAddr::V4(Ipv4Addr::from(addr)))
}

/// One `inet_aton` number: `0x` hex, leading-`0` octal, or decimal.
fn parse_inet_number(text: &str) -> Option<u64> {
    let (digits, radix) =
        if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            (hex, 16)
        } else if text.len() > 1 && text.starts_with('0') {
            (&text[1..], 8)
        } else {
            (text, 10)
        };
    if digits.is_empty() && radix != 16 {
        return None;
    }
    if digits.is_empty() {
        return Some(0);
    }
    if digits.len() > 12 || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// Whether `name` is a DNS host name: dot-separated labels of letters,
/// digits, `-` and `_` (seen in real names), none empty, none starting or
/// ending with `-`, at most 63 bytes each and 253 in all; a trailing dot is
/// allowed. A name whose last label is all digits is not a name (no top
/// level domain is numeric): it is an address spelled as a number.
pub fn is_host_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    let labels_ok = name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    let last_is_numeric = name
        .rsplit('.')
        .next()
        .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()));
    labels_ok && !last_is_numeric
}

/// What a CONNECT target (or anything a certificate is minted for) may be:
/// a host name, or an IP address written the standard way (dotted quad,
/// or IPv6, bracketed or not). Other spellings of an address (`127.1`,
/// `0x7f.1`) are refused rather than guessed at.
pub fn is_host_or_address(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().is_ok() || (is_host_name(host) && parse_ip_literal(host).is_none())
}

/// The names the proxy's own pages answer to. A browser sends the name it
/// used in `Host`; a page on another site that re-binds its own name to the
/// proxy's address (DNS rebinding) makes the browser send that name, and
/// would then read the dashboard and post its forms as if it were the
/// proxy's own page. So the pages answer only to names that are the
/// proxy's: an IP literal (no attacker's page is served under one this way),
/// `localhost` and its subdomains, this machine's host name, the proxy's
/// own name, and the configured public names.
#[derive(Debug, Clone, Default)]
pub struct OwnNames {
    names: Vec<String>,
}

impl OwnNames {
    /// `configured` (`public_names`), the proxy's pseudonym (and, for a farm
    /// node `ferry-NAME`, its `NAME`), and `machine` (this host's name).
    pub fn new(configured: &[String], pseudonym: &str, machine: Option<&str>) -> OwnNames {
        let mut names: Vec<String> = configured.iter().map(|n| normalize_host(n)).collect();
        names.push(normalize_host(pseudonym));
        if let Some(node) = pseudonym.strip_prefix("ferry-") {
            names.push(normalize_host(node));
        }
        if let Some(machine) = machine.filter(|m| is_host_name(m)) {
            let machine = normalize_host(machine);
            // Its first label too: how others on the network often name it.
            if let Some((short, _)) = machine.split_once('.') {
                names.push(short.to_string());
            }
            names.push(machine);
        }
        names.sort();
        names.dedup();
        OwnNames { names }
    }

    /// The names, with this machine's name read from the system now.
    pub fn for_this_host(configured: &[String], pseudonym: &str) -> OwnNames {
        let machine = std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
        OwnNames::new(configured, pseudonym, machine.as_deref().map(str::trim))
    }

    /// Whether a `Host` value (`name[:port]`) names this proxy.
    pub fn accepts_host(&self, host: &str) -> bool {
        let Ok(authority) = host.trim().parse::<http::uri::Authority>() else {
            return false;
        };
        if authority.as_str().contains('@') {
            return false;
        }
        self.accepts_name(authority.host())
    }

    /// Whether an `Origin` or `Referer` value is one of this proxy's pages.
    pub fn accepts_page(&self, origin: &str) -> bool {
        let Ok(uri) = origin.trim().parse::<http::Uri>() else {
            return false;
        };
        uri.scheme_str() == Some("http")
            && uri
                .authority()
                .is_some_and(|a| !a.as_str().contains('@') && self.accepts_name(a.host()))
    }

    fn accepts_name(&self, host: &str) -> bool {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if bare.parse::<IpAddr>().is_ok() {
            return true;
        }
        let name = normalize_host(host);
        name == "localhost" || name.ends_with(".localhost") || self.names.contains(&name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ip_literals_in_every_resolver_form() {
        let cases: &[(&str, Option<&str>)] = &[
            ("127.0.0.1", Some("127.0.0.1")),
            ("2130706433", Some("127.0.0.1")),
            ("0x7f000001", Some("127.0.0.1")),
            ("0X7F.1", Some("127.0.0.1")),
            ("0177.0.0.1", Some("127.0.0.1")),
            ("127.1", Some("127.0.0.1")),
            ("127.0.1", Some("127.0.0.1")),
            ("169.254.43518", Some("169.254.169.254")),
            ("0xa9fea9fe", Some("169.254.169.254")),
            ("[::ffff:127.0.0.1]", Some("127.0.0.1")),
            ("::ffff:7f00:1", Some("127.0.0.1")),
            ("[::1]", Some("::1")),
            ("0", Some("0.0.0.0")),
            ("example.com", None),
            ("256.1.1.1", None),
            ("1.2.3.4.5", None),
            ("08.1.1.1", None),
            ("4294967296", None),
            ("1.2.65536", None),
            ("", None),
            ("1..1", None),
        ];
        for (host, want) in cases {
            assert_eq!(parse_ip_literal(host), want.map(ip), "{host}");
        }
    }

    #[test]
    fn host_names_and_standard_addresses_pass_and_nothing_else() {
        for good in [
            "example.com",
            "a-b.example.com.",
            "_dmarc.example.com",
            "xn--bcher-kva.example",
            "localhost",
            "127.0.0.1",
            "::1",
            "[2001:db8::1]",
        ] {
            assert!(is_host_or_address(good), "{good}");
        }
        for bad in [
            "*.wild.test",
            "a..b",
            "-lead.test",
            "trail-.test",
            "2130706433",
            "0x7f.1",
            "0177.0.0.1",
            "127.1",
            "1.2.3.4.5",
            "",
            ".",
            "exa mple.test",
            "a/b.test",
            "a%2eb.test",
            &"a".repeat(64),
            &format!("{}.test", "a.".repeat(130)),
        ] {
            assert!(!is_host_or_address(bad), "{bad}");
        }
    }

    #[test]
    fn own_pages_answer_to_the_proxys_names_only() {
        let names = OwnNames::new(
            &["proxy.school.lan".into()],
            "ferry-a",
            Some("box.internal.example"),
        );
        for host in [
            "127.0.0.1:3128",
            "[::1]:3128",
            "10.1.2.3",
            "localhost:3128",
            "LOCALHOST.",
            "dash.localhost:3128",
            "proxy.school.lan:3128",
            "Proxy.School.Lan",
            "ferry-a",
            "a:3128",
            "box",
            "box.internal.example:3128",
        ] {
            assert!(names.accepts_host(host), "{host}");
        }
        for host in [
            "evil.example:3128",
            "localhost.evil.example",
            "proxy.school.lan.evil.example",
            "127.0.0.1.evil.example",
            "user@127.0.0.1",
            "",
            "a b",
        ] {
            assert!(!names.accepts_host(host), "{host}");
        }
        assert!(names.accepts_page("http://127.0.0.1:3128"));
        assert!(names.accepts_page("http://proxy.school.lan:3128/cache?q=x"));
        for page in [
            "null",
            "http://evil.example",
            "https://evil.example:3128",
            "file:///tmp/x.html",
            "http://127.0.0.1@evil.example",
        ] {
            assert!(!names.accepts_page(page), "{page}");
        }
    }
}
