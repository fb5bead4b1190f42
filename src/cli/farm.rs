//! `ferry farm haproxy-config`: prints the HAProxy configuration that puts
//! several Ferry nodes behind one address as a URL-sharded cache. Ferry has
//! no cluster protocol of its own; HAProxy's consistent hashing decides which
//! node owns a URL, the PROXY protocol tells the node who the client is, and
//! health checks on `/healthz` (503 while a node drains) take nodes in and
//! out. `docs/farm.md` explains each choice.

use std::fmt::Write as _;
use std::net::SocketAddr;
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
    /// in order); repeat for each. Start each node with `--node-name NAME`
    /// so its Cache-Status matches HAProxy's name for it.
    #[arg(long = "node", value_name = "[NAME=]HOST:PORT", required = true)]
    pub nodes: Vec<NodeSpec>,

    /// Where HAProxy listens for clients.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:3128")]
    pub listen: SocketAddr,

    /// Milliseconds between health checks of each node; a node is taken out
    /// after two failed checks. Give the nodes a `--drain-period` of at
    /// least three intervals.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub check_interval: u64,

    /// Where HAProxy serves its own statistics page (optional).
    #[arg(long, value_name = "ADDR")]
    pub stats: Option<SocketAddr>,
}

/// One `--node`.
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
            let token = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if !token {
                return Err(format!(
                    "node name {name:?} must be letters, digits, '-', '_' or '.'"
                ));
            }
        }
        // HOST:PORT, where HOST is a name, an IPv4 address or [IPv6].
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| format!("{addr:?} is not HOST:PORT"))?;
        let host_ok = !host.is_empty()
            && (host.parse::<std::net::Ipv4Addr>().is_ok()
                || host
                    .strip_prefix('[')
                    .and_then(|h| h.strip_suffix(']'))
                    .is_some_and(|h| h.parse::<std::net::Ipv6Addr>().is_ok())
                || host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b)));
        if !host_ok {
            return Err(format!("{host:?} is not a host name or address"));
        }
        port.parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("{port:?} is not a port"))?;
        Ok(NodeSpec {
            name,
            addr: addr.to_string(),
        })
    }
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
    let inter = args.check_interval.max(100);
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
        (inter * 3).div_ceil(1000)
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
        for bad in [
            "10.0.0.1",
            "a b=10.0.0.1:1",
            "=1.2.3.4:5",
            "h:0",
            "h:x",
            "bad host:1",
        ] {
            assert!(bad.parse::<NodeSpec>().is_err(), "{bad}");
        }
        for good in ["[::1]:3128", "node-1.example:3128", "x=127.0.0.1:1"] {
            assert!(good.parse::<NodeSpec>().is_ok(), "{good}");
        }
        assert!(haproxy_config(&args(&["a=1.1.1.1:1", "a=1.1.1.2:1"])).is_err());
    }
}
