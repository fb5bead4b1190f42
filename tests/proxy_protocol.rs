//! The PROXY protocol on the listener (`--proxy-protocol-from`): the client a
//! balancer names is the one client rules, caps and the log see; a header
//! from anyone else, or no header from a balancer, is refused; the header
//! never reaches an origin.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::{non_loopback_ipv4, proxy};
use ferry_testkit::{Origin, Reply, raw_exchange};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

fn v1(client: &str, port: u16) -> String {
    format!("PROXY TCP4 {client} 127.0.0.1 {port} 3128\r\n")
}

fn v2(client: [u8; 4], port: u16) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend_from_slice(&[0x21, 0x11, 0, 12]);
    h.extend_from_slice(&client);
    h.extend_from_slice(&[127, 0, 0, 1]);
    h.extend_from_slice(&port.to_be_bytes());
    h.extend_from_slice(&3128u16.to_be_bytes());
    h
}

fn get(url: &str) -> String {
    format!("GET {url} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
}

fn status(response: &[u8]) -> String {
    String::from_utf8_lossy(response)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

/// Sends `header` and then a GET of `url` from 127.0.0.1, and returns the
/// status line of the answer.
async fn get_behind(proxy: SocketAddr, header: impl Into<Vec<u8>>, url: &str) -> String {
    let mut sent = header.into();
    sent.extend_from_slice(get(url).as_bytes());
    status(&raw_exchange(proxy, &sent, Duration::from_secs(5)).await.0)
}

/// Sends `bytes` from `local` (an address of this machine) and reads the answer.
async fn exchange_from(local: IpAddr, to: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    exchange_from_within(local, to, bytes, Duration::from_secs(5)).await
}

async fn exchange_from_within(
    local: IpAddr,
    to: SocketAddr,
    bytes: &[u8],
    limit: Duration,
) -> Vec<u8> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(local, 0)).unwrap();
    let mut stream: TcpStream = socket.connect(to).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(limit, stream.read_to_end(&mut out)).await;
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn the_client_a_balancer_names_is_the_one_rules_and_the_log_see() {
    let origin = Origin::start(|_| Reply::text("page").header("cache-control", "max-age=60")).await;
    let proxy = proxy(&[
        "--proxy-protocol-from",
        "127.0.0.1/32",
        // The origin is on this host, which remote clients may not reach
        // unless allowed.
        "--allow-network",
        "127.0.0.1/32",
        "--allow-client",
        "198.51.100.0/24",
    ]);
    let limit = Duration::from_secs(5);

    // An allowed client, named in v1 and in v2.
    let resp = get_behind(proxy.addr(), v1("198.51.100.7", 40001), &origin.url("/v1")).await;
    assert_eq!(resp, "HTTP/1.1 200 OK");
    let resp = get_behind(
        proxy.addr(),
        v2([198, 51, 100, 8], 40002),
        &origin.url("/v2"),
    )
    .await;
    assert_eq!(resp, "HTTP/1.1 200 OK");

    // The balancer itself (127.0.0.1) is not in --allow-client, and neither
    // is the client it names here: the named client's rule applies.
    let resp = get_behind(
        proxy.addr(),
        v1("203.0.113.9", 40003),
        &origin.url("/refused"),
    )
    .await;
    assert!(resp.contains("403"), "{resp}");
    assert_eq!(origin.count("/refused"), 0);

    let log = proxy.wait_stdout_lines(2, limit).join("\n");
    assert!(
        log.contains("198.51.100.7 ") && log.contains("/v1"),
        "{log}"
    );
    assert!(
        log.contains("198.51.100.8 ") && log.contains("/v2"),
        "{log}"
    );
    assert!(
        !log.contains("127.0.0.1 "),
        "the balancer is not the client: {log}"
    );

    // The header is consumed: nothing of it reaches the origin.
    for req in origin.requests() {
        for (name, value) in &req.headers {
            let v = String::from_utf8_lossy(value.as_bytes());
            assert!(
                !v.contains("PROXY") && !name.as_str().contains("proxy"),
                "{name}: {v}"
            );
        }
    }
    assert_eq!(origin.requests().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_balancer_without_a_header_and_a_header_from_anyone_else_are_refused() {
    let origin = Origin::start(|_| Reply::text("page")).await;
    let other = non_loopback_ipv4();
    let other_net = format!("{other}/32");
    let proxy = proxy(&[
        "--listen",
        "0.0.0.0:0",
        "--proxy-protocol-from",
        "127.0.0.1/32",
        // The origin is on this host, which remote clients may not reach
        // unless allowed.
        "--allow-network",
        "127.0.0.1/32",
        "--allow-client",
        &other_net,
        "--allow-client",
        "198.51.100.0/24",
    ]);
    let port = proxy.addr().port();
    let limit = Duration::from_secs(5);
    let url = origin.url("/x");

    // From the balancer but without a header: refused, nothing fetched.
    let (resp, _) = raw_exchange(
        SocketAddr::from(([127, 0, 0, 1], port)),
        get(&url).as_bytes(),
        limit,
    )
    .await;
    let text = String::from_utf8_lossy(&resp);
    assert!(status(&resp).contains("400"), "{text}");
    assert!(text.contains("PROXY protocol"), "{text}");

    // A client that is allowed, but not a balancer, forging a header to
    // pose as someone else: refused.
    let mut forged = v1("198.51.100.7", 1234).into_bytes();
    forged.extend_from_slice(get(&url).as_bytes());
    let to = SocketAddr::new(IpAddr::V4(other), port);
    let resp = exchange_from(IpAddr::V4(other), to, &forged).await;
    let text = String::from_utf8_lossy(&resp);
    assert!(status(&resp).contains("400"), "{text}");
    assert!(text.contains("proxy-protocol-from"), "{text}");
    let resp = exchange_from(IpAddr::V4(other), to, &v2([198, 51, 100, 7], 1)).await;
    assert!(
        status(&resp).contains("400"),
        "{}",
        String::from_utf8_lossy(&resp)
    );
    assert_eq!(
        origin.requests().len(),
        0,
        "nothing refused reached the origin"
    );

    // The same client without a header is served as itself.
    let resp = exchange_from(IpAddr::V4(other), to, get(&url).as_bytes()).await;
    assert_eq!(status(&resp), "HTTP/1.1 200 OK");
    let log = proxy.wait_stdout_lines(1, limit).join("\n");
    assert!(log.contains(&format!("{other} ")), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn per_client_connection_caps_count_the_named_client_not_the_balancer() {
    let origin = Origin::start(|_| Reply::text("page")).await;
    let proxy = proxy(&[
        "--proxy-protocol-from",
        "127.0.0.1/32",
        // The origin is on this host, which remote clients may not reach
        // unless allowed.
        "--allow-network",
        "127.0.0.1/32",
        "--allow-client",
        "198.51.100.0/24",
        "--max-connections-per-client",
        "2",
    ]);
    let url = origin.url("/k");
    // Client A holds two keep-alive connections through the balancer.
    let mut held = Vec::new();
    for port in [1, 2] {
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        let mut sent = v1("198.51.100.1", port).into_bytes();
        sent.extend_from_slice(format!("GET {url} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        s.write_all(&sent).await.unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(s);
    }
    // A third for A is over its cap...
    let resp = get_behind(proxy.addr(), v1("198.51.100.1", 3), &url).await;
    assert!(resp.contains("503"), "{resp}");
    // ...while B, arriving through the same balancer address, is served.
    let resp = get_behind(proxy.addr(), v1("198.51.100.2", 4), &url).await;
    assert_eq!(resp, "HTTP/1.1 200 OK");
    drop(held);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_name_appears_in_cache_status_and_via() {
    let origin = Origin::start(|_| Reply::text("page").header("cache-control", "max-age=60")).await;
    let proxy = proxy(&["--node-name", "b"]);
    let client = ferry_testkit::ProxyClient::new(proxy.addr());
    let first = client.get(&origin.url("/n")).await;
    let second = client.get(&origin.url("/n")).await;
    assert!(
        first
            .header("cache-status")
            .unwrap()
            .starts_with("ferry-b; fwd=uri-miss"),
        "{:?}",
        first.header("cache-status")
    );
    assert!(
        second
            .header("cache-status")
            .unwrap()
            .starts_with("ferry-b; hit"),
        "{:?}",
        second.header("cache-status")
    );
    assert_eq!(origin.requests()[0].header("via"), Some("1.1 ferry-b"));
    let dashboard = client.get(&format!("{}/", proxy.url())).await;
    assert!(
        dashboard
            .text()
            .contains("<title>Ferry proxy ferry-b</title>")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_balancers_configured_a_proxy_header_is_a_bad_request() {
    let origin = Origin::start(|_| Reply::text("page")).await;
    let proxy = proxy(&[]);
    let resp = get_behind(proxy.addr(), v1("198.51.100.7", 1), &origin.url("/p")).await;
    assert!(resp.contains("400"), "{resp}");
    let resp = get_behind(proxy.addr(), v2([198, 51, 100, 7], 1), &origin.url("/p")).await;
    assert!(resp.contains("400"), "{resp}");
    assert_eq!(origin.requests().len(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_slots_take_turns_between_the_clients_a_balancer_names() {
    // Behind a balancer every connection comes from its address; fairness
    // must still see two clients, or one could starve the other.
    let gate = ferry_testkit::Gate::new();
    let g = gate.clone();
    let origin = Origin::start(move |_| Reply::text("ok").gate(&g)).await;
    // The balancer is 127.0.0.2 here, so the test reads the proxy's
    // metrics from 127.0.0.1 as an ordinary client.
    let proxy = proxy(&[
        "--no-cache",
        "--max-concurrent",
        "1",
        "--proxy-protocol-from",
        "127.0.0.2/32",
        "--allow-network",
        "127.0.0.1/32",
        "--allow-client",
        "198.51.100.0/24",
        "--allow-client",
        "127.0.0.1/32",
    ]);
    let limit = Duration::from_secs(60);
    let balancer: IpAddr = "127.0.0.2".parse().unwrap();
    let send_as = |client: &'static str, path: String| {
        let mut sent = v1(client, 1000).into_bytes();
        sent.extend_from_slice(get(&origin.url(&path)).as_bytes());
        let addr = proxy.addr();
        tokio::spawn(
            async move { status(&exchange_from_within(balancer, addr, &sent, limit).await) },
        )
    };
    let mut tasks = Vec::new();
    for i in 1..=5 {
        tasks.push(send_as("198.51.100.1", format!("/a{i}")));
        assert!(
            ferry_testkit::wait_until(limit, || origin.requests().len()
                + proxy.metric("ferry_fetch_queue_length").unwrap_or(0) as usize
                == i)
            .await
        );
    }
    tasks.push(send_as("198.51.100.2", "/b".to_string()));
    assert!(
        ferry_testkit::wait_until(limit, || proxy.metric("ferry_fetch_queue_length")
            == Some(5))
        .await
    );
    for n in 1..=6 {
        assert!(ferry_testkit::wait_until(limit, || origin.requests().len() == n).await);
        gate.release(1);
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), "HTTP/1.1 200 OK");
    }
    let order: Vec<String> = origin.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        order[1], "/b",
        "the second client waited behind the first one's queue: {order:?}"
    );
}

/// A v2 header of the LOCAL command (the balancer speaking for itself).
fn v2_local() -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend_from_slice(&[0x20, 0x00, 0, 0]);
    h
}

/// A v2 PROXY header of an address family that names no client (AF_UNSPEC).
fn v2_unspec() -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend_from_slice(&[0x21, 0x00, 0, 0]);
    h
}

#[tokio::test(flavor = "multi_thread")]
async fn a_header_that_names_no_client_gets_health_checks_only_unless_the_balancer_is_allowed() {
    let origin = Origin::start(|_| Reply::text("page")).await;
    let url = origin.url("/x");
    // The balancer (127.0.0.1) is not an allowed client.
    let proxy = proxy(&[
        "--proxy-protocol-from",
        "127.0.0.1/32",
        "--allow-client",
        "198.51.100.0/24",
        "--allow-network",
        "127.0.0.1/32",
    ]);
    let headers: [(&str, Vec<u8>); 3] = [
        ("v2 LOCAL", v2_local()),
        ("v2 AF_UNSPEC", v2_unspec()),
        ("v1 UNKNOWN", b"PROXY UNKNOWN\r\n".to_vec()),
    ];
    for (name, header) in &headers {
        let health = get_behind(proxy.addr(), header.clone(), "/healthz").await;
        assert_eq!(health, "HTTP/1.1 200 OK", "{name}: health check");
        let fetched = get_behind(proxy.addr(), header.clone(), &url).await;
        assert!(fetched.contains("403"), "{name}: {fetched}");
        let page = get_behind(proxy.addr(), header.clone(), "/api/stats").await;
        assert!(page.contains("403"), "{name}: {page}");
    }
    assert_eq!(origin.requests().len(), 0);
    // When the balancer's own address is an allowed client, it may.
    let allowed = common::proxy(&[
        "--proxy-protocol-from",
        "127.0.0.1/32",
        "--allow-network",
        "127.0.0.1/32",
    ]);
    for (name, header) in &headers {
        let fetched = get_behind(allowed.addr(), header.clone(), &url).await;
        assert_eq!(fetched, "HTTP/1.1 200 OK", "{name}");
    }
}
