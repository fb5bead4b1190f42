//! `ferry farm haproxy-config`: prints the HAProxy configuration that puts
//! several Ferry nodes behind one address as a URL-sharded cache. Ferry has
//! no cluster protocol of its own; HAProxy's consistent hashing decides which
//! node owns a URL, the PROXY protocol tells the node who the client is, and
//! health checks on `/healthz` (503 while a node drains) take nodes in and
//! out. `docs/farm.md` explains each choice.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::str::FromStr;

#[derive(Debug, clap::Args)]
pub struct FarmArgs {
    #[command(subcommand)]
    pub command: FarmCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum FarmCommand {
    /// Print an HAProxy (2.6 or newer) configuration for these nodes.
    HaproxyConfig(HaproxyConfigArgs),
}

#[derive(Debug, clap::Args)]
pub struct HaproxyConfigArgs {
    /// A Ferry node, as NAME=HOST:PORT or HOST:PORT (then named n1, n2, ...
    /// in order); repeat for each. HOST is a host name, an IPv4 address or
    /// an IPv6 address in brackets; PORT is 1 to 65535 in plain digits.
    /// Start each node with `--node-name NAME` so its Cache-Status matches
    /// HAProxy's name for it.
    #[arg(long = "node", value_name = "[NAME=]HOST:PORT", required = true)]
    pub nodes: Vec<NodeSpec>,

    /// Where HAProxy listens for clients.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:3128", value_parser = bind_addr)]
    pub listen: SocketAddr,

    /// Milliseconds between health checks of each node (1 to 2147483647,
    /// HAProxy's limit; below 100 counts as 100); a node is taken out after
    /// two failed checks. Give the nodes a `--drain-period` of at least
    /// three intervals.
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 1000,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_INTERVAL_MS))
    )]
    pub check_interval: u32,

    /// Where HAProxy serves its own statistics page (optional).
    #[arg(long, value_name = "ADDR", value_parser = bind_addr)]
    pub stats: Option<SocketAddr>,
}

/// HAProxy's largest time value: 2^31 - 1 ms (about 24.8 days).
const MAX_INTERVAL_MS: u32 = i32::MAX as u32;

/// The shortest check interval written: shorter ones are raised to this.
const MIN_INTERVAL_MS: u32 = 100;

/// One `--node`. `addr` is checked to be `HOST:PORT` in the forms HAProxy
/// reads (see [`check_node_addr`]), so it is written into the configuration
/// as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    pub name: Option<String>,
    pub addr: String,
}

impl FromStr for NodeSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (name, addr) = match s.split_once('=') {
            Some((name, addr)) => (Some(name.to_string()), addr),
            None => (None, s),
        };
        if let Some(name) = &name {
            check_node_name(name)?;
        }
        check_node_addr(addr)?;
        Ok(NodeSpec {
            name,
            addr: addr.to_string(),
        })
    }
}

/// A node's name, as HAProxy's server name and Ferry's `--node-name`.
fn check_node_name(name: &str) -> Result<(), String> {
    let token = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if token {
        Ok(())
    } else {
        Err(format!(
            "node name {name:?} must be letters, digits, '-', '_' or '.'"
        ))
    }
}

/// Checks a node's `HOST:PORT`: HOST is a host name, an IPv4 address or an
/// IPv6 address in brackets (not the unspecified address, no zone), and
/// PORT is 1..=65535 in plain decimal digits (no sign, no leading zero).
/// Anything else is refused, so nothing but an address reaches the
/// configuration text.
fn check_node_addr(addr: &str) -> Result<(), String> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| format!("{addr:?} is not HOST:PORT"))?;
    check_port(port)?;
    let ip = if let Some(inner) = host.strip_prefix('[') {
        let v6 = inner
            .strip_suffix(']')
            .and_then(|h| h.parse::<Ipv6Addr>().ok())
            .ok_or_else(|| format!("{host:?} is not an IPv6 address in brackets"))?;
        Some(IpAddr::V6(v6))
    } else if host.parse::<Ipv6Addr>().is_ok() {
        return Err(format!(
            "{host:?}: write an IPv6 address in brackets, as [{host}]:{port}"
        ));
    } else if let Ok(v4) = host.parse::<Ipv4Addr>() {
        Some(IpAddr::V4(v4))
    } else {
        check_host_name(host)?;
        None
    };
    if ip.is_some_and(|ip| ip.is_unspecified()) {
        return Err(format!("{host} is not an address a node can be reached at"));
    }
    Ok(())
}

/// A port as HAProxy should read it: 1..=65535, decimal digits only, no
/// leading zero (`+80` would be read as no port at all, `080` is ambiguous).
fn check_port(port: &str) -> Result<u16, String> {
    let plain =
        !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && !port.starts_with('0');
    match port.parse::<u16>() {
        Ok(p) if plain => Ok(p),
        _ => Err(format!("{port:?} is not a port (1 to 65535, plain digits)")),
    }
}

/// A DNS host name (RFC 1123 section 2.1): dot-separated labels of letters,
/// digits and inner hyphens, 1..=63 bytes each, 253 in all, no trailing dot.
/// An all-digit last label is refused: `1.2.3` or `999.1.1.1` is a mistyped
/// IPv4 address, not a name.
fn check_host_name(host: &str) -> Result<(), String> {
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if host.is_empty() {
        return Err("the host is empty".to_string());
    }
    if host.len() > 253 || !host.split('.').all(label_ok) {
        return Err(format!("{host:?} is not a host name or address"));
    }
    let numeric_end = host
        .rsplit('.')
        .next()
        .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()));
    if numeric_end {
        return Err(format!("{host:?} is not an IPv4 address or a host name"));
    }
    Ok(())
}

/// `--listen` and `--stats`: a socket address HAProxy can bind.
fn bind_addr(s: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = s
        .parse()
        .map_err(|_| format!("{s:?} is not IP:PORT (an IPv6 address in brackets)"))?;
    check_bind(addr)?;
    Ok(addr)
}

/// `haproxy -c` refuses port 0 and an IPv6 zone (`[fe80::1%2]:3128`).
fn check_bind(addr: SocketAddr) -> Result<(), String> {
    if addr.port() == 0 {
        return Err(format!("{addr}: HAProxy needs a port other than 0 to bind"));
    }
    if let SocketAddr::V6(v6) = addr {
        if v6.scope_id() != 0 {
            return Err(format!("{addr}: HAProxy does not take an IPv6 zone here"));
        }
    }
    Ok(())
}

/// Whether two bind addresses would take the same port on one address.
fn overlapping(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// The `--drain-period` (whole seconds) to advise for a check interval:
/// three intervals, rounded up. Cannot overflow: at most 6,442,451 s.
fn drain_advice_secs(inter_ms: u32) -> u64 {
    u64::from(inter_ms).saturating_mul(3).div_ceil(1000)
}

pub fn run(args: FarmArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        FarmCommand::HaproxyConfig(args) => {
            let config = haproxy_config(&args)?;
            print!("{config}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The configuration text. Fails on two nodes with one name.
pub fn haproxy_config(args: &HaproxyConfigArgs) -> anyhow::Result<String> {
    let names: Vec<String> = args
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| n.name.clone().unwrap_or_else(|| format!("n{}", i + 1)))
        .collect();
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            anyhow::bail!("two nodes are named {name:?}");
        }
    }
    // The parsers check all of this already; `HaproxyConfigArgs` is plain
    // data, so check again before anything is written.
    for (name, node) in names.iter().zip(&args.nodes) {
        check_node_name(name).map_err(anyhow::Error::msg)?;
        check_node_addr(&node.addr).map_err(anyhow::Error::msg)?;
    }
    check_bind(args.listen).map_err(anyhow::Error::msg)?;
    if let Some(stats) = args.stats {
        check_bind(stats).map_err(anyhow::Error::msg)?;
        if overlapping(stats, args.listen) {
            anyhow::bail!(
                "--stats {stats} would share a port with --listen {}",
                args.listen
            );
        }
    }
    if !(1..=MAX_INTERVAL_MS).contains(&args.check_interval) {
        anyhow::bail!(
            "--check-interval must be 1 to {MAX_INTERVAL_MS} ms, not {}",
            args.check_interval
        );
    }
    let inter = args.check_interval.max(MIN_INTERVAL_MS);
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(
        w,
        "# HAProxy in front of {} Ferry nodes, from `ferry farm haproxy-config`.",
        args.nodes.len()
    );
    let _ = writeln!(
        w,
        "# Each URL is owned by one node (consistent hashing on the whole URL, authority\n\
         # included); the nodes learn the client's address from the PROXY protocol (start\n\
         # them with --proxy-protocol-from <this host>/32 --node-name NAME --drain-period {}).",
        drain_advice_secs(inter)
    );
    let _ = w.write_str(
        "
global
    log stdout format raw local0

defaults
    mode http
    log global
    option httplog
    option dontlognull
    # A node that refuses a connection (stopped) is skipped and the request
    # sent to the next: connect failures are the only retry, so a request is
    # never sent twice.
    retries 3
    option redispatch 1
    timeout connect 5s
    timeout check 2s
    # Inactivity, not duration: a long download is fine while bytes move. A
    # node may take up to its queue timeout plus its response timeout (60 s
    # + 60 s by default) before the first byte of a miss.
    timeout client 5m
    timeout server 3m
    # An established CONNECT tunnel (HTTPS through the farm): without it an
    # idle tunnel would be cut at `timeout client`.
    timeout tunnel 1h
    timeout client-fin 30s
    timeout server-fin 30s
    timeout http-request 30s
    timeout http-keep-alive 60s
    timeout queue 60s
",
    );
    if let Some(stats) = args.stats {
        let _ = writeln!(
            w,
            "\nfrontend stats\n    bind {stats}\n    stats enable\n    stats uri /\n    stats refresh 5s"
        );
    }
    let _ = writeln!(
        w,
        "
frontend ferry
    bind {listen}
    default_backend ferry_nodes

backend ferry_nodes
    # The whole URL as the client sent it: for a proxy that is the absolute
    # form, so the host is part of the hash. CONNECT host:port hashes on its
    # authority.
    balance uri whole
    hash-type consistent
    # A node answers 503 here while it drains after SIGTERM.
    option httpchk
    http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host ferry-health
    http-check expect status 200
    # A node connection carries one client's PROXY header, so it serves
    # that client only; `never` keeps one node connection per client
    # connection instead of idle ones piling up unusable.
    http-reuse never
    # The PROXY protocol on every connection, health checks included (they
    # are sent as LOCAL connections of the balancer itself). Weight 100
    # gives the consistent-hash ring more points per node: a more even split.
    default-server send-proxy-v2 check-send-proxy check inter {inter}ms fall 2 rise 2 weight 100",
        listen = args.listen,
    );
    for (name, node) in names.iter().zip(&args.nodes) {
        let _ = writeln!(w, "    server {name} {}", node.addr);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(nodes: &[&str]) -> HaproxyConfigArgs {
        HaproxyConfigArgs {
            nodes: nodes.iter().map(|n| n.parse().unwrap()).collect(),
            listen: "0.0.0.0:3128".parse().unwrap(),
            check_interval: 1000,
            stats: None,
        }
    }

    #[test]
    fn nodes_are_named_and_checked_with_the_proxy_protocol() {
        let text = haproxy_config(&args(&["a=10.0.0.1:3128", "10.0.0.2:3128"])).unwrap();
        assert!(text.contains("    server a 10.0.0.1:3128\n"));
        assert!(text.contains("    server n2 10.0.0.2:3128\n"));
        assert!(text.contains("balance uri whole"));
        assert!(text.contains("hash-type consistent"));
        assert!(text.contains("send-proxy-v2 check-send-proxy check"));
        assert!(text.contains("http-reuse never"));
        assert!(text.contains("timeout tunnel"));
        assert!(text.contains("uri /healthz"));
    }

    #[test]
    fn bad_node_specs_are_refused_with_a_reason() {
        for (bad, reason) in [
            ("10.0.0.1", "is not HOST:PORT"),
            ("a b=10.0.0.1:1", "node name"),
            ("=1.2.3.4:5", "node name"),
            ("a\n=1.2.3.4:5", "node name"),
            // Ports: plain decimal 1..=65535 only.
            ("h:0", "is not a port"),
            ("h:x", "is not a port"),
            ("h:", "is not a port"),
            ("127.0.0.1:+80", "is not a port"),
            ("127.0.0.1:-80", "is not a port"),
            ("127.0.0.1:080", "is not a port"),
            ("127.0.0.1:00080", "is not a port"),
            ("127.0.0.1:65536", "is not a port"),
            ("127.0.0.1:99999999999999999999", "is not a port"),
            ("127.0.0.1: 80", "is not a port"),
            ("127.0.0.1:80 ", "is not a port"),
            ("127.0.0.1:٨٠", "is not a port"),
            // Hosts.
            (":080", "is not a port"),
            (":80", "the host is empty"),
            ("bad host:1", "is not a host name"),
            (" h:1", "is not a host name"),
            ("h\n    server x 10.0.0.9:1", "is not a host name"),
            ("h:1\n    server x 10.0.0.9:1", "is not a host name"),
            ("h\nbackend x:1", "is not a host name"),
            ("h#c:1", "is not a host name"),
            ("a.b..c:1", "is not a host name"),
            (".h:1", "is not a host name"),
            ("h.:1", "is not a host name"),
            ("-h:1", "is not a host name"),
            ("h-:1", "is not a host name"),
            ("x_y:1", "is not a host name"),
            ("é.example:1", "is not a host name"),
            ("1.2.3:1", "is not an IPv4 address"),
            ("999.1.1.1:1", "is not an IPv4 address"),
            ("010.0.0.1:1", "is not an IPv4 address"),
            ("0.0.0.0:1", "can be reached at"),
            ("[::]:1", "can be reached at"),
            ("::1:3128", "in brackets"),
            ("[::1:3128", "in brackets"),
            ("[fe80::1%eth0]:1", "in brackets"),
            ("[10.0.0.1]:1", "in brackets"),
        ] {
            let err = bad.parse::<NodeSpec>().expect_err(bad);
            assert!(err.contains(reason), "{bad:?}: {err}");
        }
        let long_label = format!("{}.example:1", "a".repeat(64));
        assert!(long_label.parse::<NodeSpec>().is_err());
        let long_name = format!("{}a:1", "a.".repeat(127));
        assert!(long_name.parse::<NodeSpec>().is_err());
        for good in [
            "[::1]:3128",
            "[2001:db8::7]:65535",
            "[::ffff:10.0.0.1]:1",
            "node-1.example:3128",
            "x=127.0.0.1:1",
            "LOCALHOST:80",
            "a_b.c-d=localhost:8080",
            "h1:9",
            "0a.example:1",
        ] {
            assert!(good.parse::<NodeSpec>().is_ok(), "{good}");
        }
        assert!(haproxy_config(&args(&["a=1.1.1.1:1", "a=1.1.1.2:1"])).is_err());
    }

    #[test]
    fn listen_and_stats_must_be_bindable_and_apart() {
        for bad in [
            "127.0.0.1:0",
            "[::]:0",
            "[fe80::1%2]:3128",
            "localhost:1",
            "1.2.3.4",
        ] {
            assert!(bind_addr(bad).is_err(), "{bad}");
        }
        for good in ["0.0.0.0:3128", "[::]:3128", "[::1]:1"] {
            assert!(bind_addr(good).is_ok(), "{good}");
        }
        let mut a = args(&["10.0.0.1:3128"]);
        for (stats, ok) in [
            ("0.0.0.0:3128", false),
            ("127.0.0.1:3128", false),
            ("127.0.0.1:8404", true),
        ] {
            a.stats = Some(stats.parse().unwrap());
            assert_eq!(haproxy_config(&a).is_ok(), ok, "{stats}");
        }
        // The struct is plain data: what bypasses the parsers is checked too.
        let mut a = args(&["10.0.0.1:3128"]);
        a.nodes[0].addr = "10.0.0.1:+80".into();
        assert!(haproxy_config(&a).is_err());
        let mut a = args(&["10.0.0.1:3128"]);
        a.listen = "0.0.0.0:0".parse().unwrap();
        assert!(haproxy_config(&a).is_err());
    }

    #[test]
    fn check_intervals_stay_in_haproxy_range_and_the_advice_is_right() {
        for (interval, inter, drain) in [
            (1, "inter 100ms", "--drain-period 1)"),
            (100, "inter 100ms", "--drain-period 1)"),
            (1000, "inter 1000ms", "--drain-period 3)"),
            (1001, "inter 1001ms", "--drain-period 4)"),
            (
                MAX_INTERVAL_MS,
                "inter 2147483647ms",
                "--drain-period 6442451)",
            ),
        ] {
            let mut a = args(&["10.0.0.1:3128"]);
            a.check_interval = interval;
            let text = haproxy_config(&a).unwrap();
            assert!(text.contains(inter), "{interval}: {text}");
            assert!(text.contains(drain), "{interval}: {text}");
        }
        for bad in [0, MAX_INTERVAL_MS + 1, u32::MAX] {
            let mut a = args(&["10.0.0.1:3128"]);
            a.check_interval = bad;
            assert!(haproxy_config(&a).is_err(), "{bad}");
        }
        assert_eq!(drain_advice_secs(u32::MAX), 12_884_902);
    }
}
