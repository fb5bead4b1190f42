//! A farm: three real Ferry nodes behind a real HAProxy (Debian's, installed
//! by scripts/test.sh) configured by `ferry farm haproxy-config`, and one
//! local origin. Shows sharding (each URL fetched once, by one node), the
//! loss of a node under load (no failed request, only its share refetched),
//! the client's address reaching the nodes' rules and logs through the PROXY
//! protocol, PURGE reaching the owner, and CONNECT through the farm.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{ferry, proxy};
use ferry_testkit::{Origin, Proxy, ProxyClient, Reply};
use http::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const NODES: [&str; 3] = ["a", "b", "c"];
/// The balancer's address as the nodes see it; clients use other loopback
/// addresses so the nodes can tell them apart.
const BALANCER: &str = "127.0.0.1/32";
const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// Longer than HAProxy's check interval (500 ms) × fall (2).
const DRAIN: &str = "3";
const STRANGER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

struct Farm {
    nodes: Vec<(String, Proxy)>,
    haproxy: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Drop for Farm {
    fn drop(&mut self) {
        let _ = self.haproxy.kill();
        let _ = self.haproxy.wait();
    }
}

impl Farm {
    fn node(&self, name: &str) -> &Proxy {
        &self.nodes.iter().find(|(n, _)| n == name).unwrap().1
    }

    fn node_mut(&mut self, name: &str) -> &mut Proxy {
        &mut self.nodes.iter_mut().find(|(n, _)| n == name).unwrap().1
    }

    /// Waits (the access log is written by its own thread) until `node`
    /// has logged a line starting with `client` and containing `needle`, and
    /// returns that line.
    async fn logged(&self, node: &str, client: &str, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let log = self.node(node).stdout();
            let found = log
                .lines()
                .find(|l| l.starts_with(&format!("{client} ")) && l.contains(needle));
            if let Some(line) = found {
                return line.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "node {node} never logged {needle:?} from {client}:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn client(&self, from: IpAddr) -> ProxyClient {
        ProxyClient::new(self.addr).bind(from)
    }

    fn haproxy_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("haproxy.log")).unwrap_or_default()
    }
}

fn haproxy_bin() -> &'static str {
    for path in ["/usr/sbin/haproxy", "/usr/bin/haproxy"] {
        if Path::new(path).exists() {
            return path;
        }
    }
    panic!("this test needs HAProxy (scripts/test.sh installs Debian's haproxy package)")
}

/// A free port for HAProxy to listen on (it cannot report one it picked).
/// Taken below the kernel's ephemeral range, where the ports the nodes and
/// origins get by binding port 0 come from, so they cannot take it between
/// this check and HAProxy's bind.
fn free_port() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let mut candidate = (std::process::id() as u64) << 32 ^ nanos;
    for _ in 0..1000 {
        candidate = candidate
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let port = 20_000 + (candidate >> 33) as u16 % 12_000;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between 20000 and 32000")
}

/// Starts three nodes and HAProxy in front of them, and waits until
/// HAProxy's health checks have reached every node.
async fn start_farm(extra: &[&str]) -> Farm {
    let nodes: Vec<(String, Proxy)> = NODES
        .iter()
        .map(|name| {
            let mut args = vec![
                "--node-name",
                name,
                "--proxy-protocol-from",
                BALANCER,
                "--allow-client",
                "127.0.0.1/32",
                "--allow-client",
                "127.0.0.2/32",
                "--admin-client",
                "127.0.0.1/32",
                "--drain-period",
                DRAIN,
                "--max-concurrent",
                "16",
            ];
            args.extend_from_slice(extra);
            (name.to_string(), proxy(&args))
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut generate = Command::new(ferry());
    generate.args(["farm", "haproxy-config", "--listen", &listen.to_string()]);
    generate.args(["--check-interval", "500"]);
    for (name, node) in &nodes {
        generate
            .arg("--node")
            .arg(format!("{name}={}", node.addr()));
    }
    let out = generate.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = dir.path().join("haproxy.cfg");
    std::fs::write(&cfg, &out.stdout).unwrap();
    let check = Command::new(haproxy_bin())
        .arg("-c")
        .arg("-f")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "haproxy -c refused the generated configuration:\n{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let log = std::fs::File::create(dir.path().join("haproxy.log")).unwrap();
    let haproxy = Command::new(haproxy_bin())
        .arg("-f")
        .arg(&cfg)
        .arg("-db")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let farm = Farm {
        nodes,
        haproxy,
        addr: listen,
        dir,
    };
    // Every node has answered a health check (they come as LOCAL
    // connections of the balancer itself).
    let deadline = Instant::now() + Duration::from_secs(20);
    while !farm
        .nodes
        .iter()
        .all(|(_, n)| n.stdout().contains("GET /healthz"))
    {
        assert!(
            Instant::now() < deadline,
            "health checks never reached every node; haproxy:\n{}",
            farm.haproxy_log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    farm
}

/// The node named in a response's Cache-Status (`ferry-<node>; ...`).
fn answered_by(resp: &ferry_testkit::TestResponse) -> String {
    let status = resp.header("cache-status").unwrap_or("");
    status
        .split(';')
        .next()
        .and_then(|n| n.strip_prefix("ferry-"))
        .unwrap_or("?")
        .to_string()
}

fn cacheable_origin() -> impl Fn(&ferry_testkit::Recorded) -> Reply {
    |req| Reply::text(format!("object {}", req.path)).header("cache-control", "max-age=600")
}

/// Fetches every URL once through the farm, `concurrency` at a time, and
/// returns which node answered each (with the Cache-Status seen).
async fn fetch_all(
    client: &ProxyClient,
    urls: &[String],
    concurrency: usize,
) -> Vec<(String, String)> {
    let gate = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, url) in urls.iter().enumerate() {
        let (client, url, gate) = (client.clone(), url.clone(), gate.clone());
        tasks.spawn(async move {
            let _slot = gate.acquire_owned().await.unwrap();
            let resp = client.get(&url).await;
            assert_eq!(resp.status, 200, "{url}: {}", resp.text());
            let status = resp.header("cache-status").unwrap_or("").to_string();
            (i, answered_by(&resp), status)
        });
    }
    let mut out = vec![(String::new(), String::new()); urls.len()];
    while let Some(done) = tasks.join_next().await {
        let (i, node, status) = done.unwrap();
        out[i] = (node, status);
    }
    out
}

/// Sends a GET for each URL (tagged `who=N`) one after another on one
/// kept-alive connection from `from`.
async fn keep_alive_run(farm: SocketAddr, from: IpAddr, who: u8, urls: &[String]) {
    use http_body_util::{BodyExt, Empty};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    let stream = socket.connect(farm).await.unwrap();
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(conn);
    for url in urls {
        let tagged = format!("{url}&who={who}");
        let host = tagged
            .parse::<http::Uri>()
            .unwrap()
            .authority()
            .unwrap()
            .to_string();
        let req = http::Request::get(&tagged)
            .header("host", host)
            .body(Empty::<bytes::Bytes>::new())
            .unwrap();
        sender.ready().await.unwrap();
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200, "{tagged}");
        resp.into_body().collect().await.unwrap();
    }
}

/// One client connection to the farm, kept open across requests.
struct KeptAlive(hyper::client::conn::http1::SendRequest<http_body_util::Empty<bytes::Bytes>>);

impl KeptAlive {
    async fn open(farm: SocketAddr) -> Result<KeptAlive, String> {
        let stream = TcpStream::connect(farm).await.map_err(|e| e.to_string())?;
        let io = hyper_util::rt::TokioIo::new(stream);
        let (sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        Ok(KeptAlive(sender))
    }

    async fn get(&mut self, url: &str) -> Result<(u16, String), String> {
        use http_body_util::BodyExt;
        let host = url
            .parse::<http::Uri>()
            .unwrap()
            .authority()
            .unwrap()
            .to_string();
        let req = http::Request::get(url)
            .header("host", host)
            .body(http_body_util::Empty::new())
            .unwrap();
        self.0
            .ready()
            .await
            .map_err(|e| format!("kept-alive connection: {e}"))?;
        let resp = self
            .0
            .send_request(req)
            .await
            .map_err(|e| format!("kept-alive connection: {e}"))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        Ok((
            status,
            String::from_utf8_lossy(&body.to_bytes()).into_owned(),
        ))
    }
}

fn split(owners: &[(String, String)]) -> BTreeMap<String, usize> {
    let mut by_node = BTreeMap::new();
    for (node, _) in owners {
        *by_node.entry(node.clone()).or_insert(0) += 1;
    }
    by_node
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_farm_fetches_each_url_once_and_spreads_them_over_the_nodes() {
    let origin = Origin::start(cacheable_origin()).await;
    // A local echo service for CONNECT through the farm.
    let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo_addr = echo.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = echo.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    let farm = start_farm(&["--connect-port", &echo_addr.port().to_string()]).await;
    // Bulk traffic comes from 127.0.0.1, left for the kernel to pick ports;
    // the address checks below use 127.0.0.2.
    let client = ProxyClient::new(farm.addr);
    let urls: Vec<String> = (0..1000)
        .map(|i| origin.url(&format!("/obj/{i}?v={}", i * 7)))
        .collect();

    let first = fetch_all(&client, &urls, 16).await;
    let second = fetch_all(&client, &urls, 16).await;
    for (i, url) in urls.iter().enumerate() {
        assert!(first[i].1.contains("stored"), "{url}: {}", first[i].1);
        assert!(second[i].1.contains("; hit"), "{url}: {}", second[i].1);
        assert_eq!(first[i].0, second[i].0, "{url} moved between nodes");
    }
    let paths: HashSet<String> = origin.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        origin.requests().len(),
        1000,
        "each URL reached the origin once"
    );
    assert_eq!(paths.len(), 1000);

    let by_node = split(&first);
    eprintln!("farm: 1000 URLs over 3 nodes: {by_node:?}");
    assert_eq!(by_node.keys().cloned().collect::<Vec<_>>(), NODES);
    for (node, n) in &by_node {
        assert!(
            (200..=470).contains(n),
            "node {node} owns {n} of 1000 URLs: {by_node:?}"
        );
    }

    // The client's own address, from the PROXY header, is what the owning
    // node logged; the balancer's (127.0.0.1) appears only for checks.
    let hit = farm.client(CLIENT).get(&urls[0]).await;
    assert!(hit.header("cache-status").unwrap().contains("; hit"));
    farm.logged(&first[0].0, "127.0.0.2", "/obj/0?v=0 ").await;

    // Two clients, each sending many requests on one kept-alive connection
    // to HAProxy at the same time: HAProxy must never send one client's
    // request on a node connection that another client's PROXY header
    // opened, or the node would apply the wrong client's rules.
    let mut both = tokio::task::JoinSet::new();
    for (who, from) in [(1, IpAddr::V4(Ipv4Addr::LOCALHOST)), (2, CLIENT)] {
        let (addr, urls) = (farm.addr, urls.clone());
        both.spawn(async move { keep_alive_run(addr, from, who, &urls[..150]).await });
    }
    while let Some(done) = both.join_next().await {
        done.unwrap();
    }
    let who_lines = |farm: &Farm| {
        farm.nodes
            .iter()
            .map(|(_, p)| p.stdout().lines().filter(|l| l.contains("who=")).count())
            .sum::<usize>()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while who_lines(&farm) < 300 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(who_lines(&farm), 300);
    for (node, proxy) in &farm.nodes {
        let log = proxy.stdout();
        let mut seen = 0;
        for line in log.lines().filter(|l| l.contains("who=")) {
            seen += 1;
            let expected = if line.contains("who=1") {
                "127.0.0.1 "
            } else {
                "127.0.0.2 "
            };
            assert!(
                line.starts_with(expected),
                "node {node} mixed clients: {line}"
            );
        }
        eprintln!("farm: node {node} logged {seen} kept-alive requests, each with its own client");
    }

    // Client rules see that address too: 127.0.0.3 is not an allowed client.
    let stranger = farm.client(STRANGER).get(&urls[1]).await;
    assert_eq!(stranger.status, 403, "{}", stranger.text());
    assert!(
        stranger.text().contains("127.0.0.3 is not in allow-client"),
        "{}",
        stranger.text()
    );

    // PURGE goes by the same hash to the owner. Only admin clients may:
    // 127.0.0.2 may not, 127.0.0.1 (the admin client here) may.
    let purged = &urls[5];
    let owner = &first[5].0;
    let refused = farm
        .client(CLIENT)
        .send(Method::from_bytes(b"PURGE").unwrap(), purged, &[], "")
        .await;
    assert_eq!(refused.status, 403);
    let admin = farm.client(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let done = admin
        .send(Method::from_bytes(b"PURGE").unwrap(), purged, &[], "")
        .await;
    assert_eq!(done.status, 200, "{}", done.text());
    let line = farm.logged(owner, "127.0.0.2", "\"PURGE ").await;
    assert!(line.contains(" 403 "), "{line}");
    let line = farm.logged(owner, "127.0.0.1", "\"PURGE ").await;
    assert!(line.contains(" 200 "), "{line}");
    let again = client.get(purged).await;
    assert_eq!(answered_by(&again), *owner);
    assert!(again.header("cache-status").unwrap().contains("stored"));
    assert_eq!(
        origin.requests().len(),
        // The 1,000 URLs, the two clients' 300 tagged ones, the purged one.
        1301,
        "only the purged URL was fetched again"
    );

    // A PROXY header straight to a node from a client, not the balancer:
    // refused.
    let node = farm.node("a").addr();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(CLIENT, 0)).unwrap();
    let mut direct = socket.connect(node).await.unwrap();
    direct
        .write_all(
            format!(
                "PROXY TCP4 127.0.0.1 127.0.0.1 1 2\r\nPURGE {} HTTP/1.1\r\nHost: x\r\n\r\n",
                urls[6]
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), direct.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");

    // CONNECT through the farm: a tunnel to the local echo service.
    let mut tunnel = TcpStream::connect(farm.addr).await.unwrap();
    tunnel
        .write_all(format!("CONNECT {echo_addr} HTTP/1.1\r\nHost: {echo_addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut head = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), tunnel.read(&mut head))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&head[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    tunnel.write_all(b"through the farm").await.unwrap();
    let mut echoed = [0u8; 16];
    tokio::time::timeout(Duration::from_secs(5), tunnel.read_exact(&mut echoed))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&echoed, b"through the farm");
    drop(tunnel);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let carried_by: Vec<&str> = farm
        .nodes
        .iter()
        .filter(|(_, n)| n.stdout().contains(&format!("\"CONNECT {echo_addr} ")))
        .map(|(name, _)| name.as_str())
        .collect();
    eprintln!("farm: CONNECT {echo_addr} carried by node {carried_by:?}");
    assert_eq!(carried_by.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_stopped_under_load_fails_no_request_and_only_its_share_is_refetched() {
    let origin = Origin::start(cacheable_origin()).await;
    let mut farm = start_farm(&[]).await;
    let client = ProxyClient::new(farm.addr);
    let urls: Vec<String> = (0..1000).map(|i| origin.url(&format!("/u/{i}"))).collect();
    let owners = fetch_all(&client, &urls, 16).await;
    let owned_by_b: HashSet<String> = urls
        .iter()
        .zip(&owners)
        .filter(|(_, (node, _))| node == "b")
        .map(|(url, _)| url.clone())
        .collect();
    assert_eq!(origin.requests().len(), 1000);

    // A steady run of requests over all the URLs, during which node b is
    // stopped with SIGTERM; it goes on for a second after b has exited.
    let sent = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut load = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let (client, urls, sent, stop, failures) = (
            client.clone(),
            urls.clone(),
            sent.clone(),
            stop.clone(),
            failures.clone(),
        );
        // Half the workers open a connection per request; the other half
        // keep one open, as browsers do (a new one only after a failure).
        let keep_alive = worker % 2 == 1;
        let farm_addr = farm.addr;
        load.spawn(async move {
            let mut i = worker;
            let mut kept: Option<KeptAlive> = None;
            while !stop.load(Ordering::Relaxed) {
                sent.fetch_add(1, Ordering::Relaxed);
                let url = &urls[i % urls.len()];
                i += 8;
                let result = if keep_alive {
                    if kept.is_none() {
                        kept = KeptAlive::open(farm_addr).await.ok();
                    }
                    match kept.as_mut() {
                        Some(conn) => conn.get(url).await,
                        None => Err("connect failed".to_string()),
                    }
                } else {
                    client
                        .try_send(Method::GET, url, &[], "")
                        .await
                        .map(|r| (r.status.as_u16(), r.text()))
                };
                match result {
                    Ok((200, _)) => {}
                    Ok((status, text)) => failures
                        .lock()
                        .unwrap()
                        .push(format!("{url}: {status} {text}")),
                    Err(e) => {
                        kept = None;
                        failures.lock().unwrap().push(format!("{url}: {e}"));
                    }
                }
            }
        });
    }
    while sent.load(Ordering::Relaxed) < 500 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let stopped_at = sent.load(Ordering::Relaxed);
    farm.node("b").signal(15);
    let exited =
        tokio::task::block_in_place(|| farm.node_mut("b").wait_exit(Duration::from_secs(30)));
    let exited_at = sent.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    while load.join_next().await.is_some() {}
    let total = sent.load(Ordering::Relaxed);
    assert!(
        exited.is_some_and(|s| s.success()),
        "node b did not stop cleanly"
    );
    let failures = failures.lock().unwrap().clone();
    eprintln!(
        "farm: SIGTERM to node b after request {stopped_at}, b exited by request \
         {exited_at}; {total} requests in all, {} failed",
        failures.len()
    );
    assert!(failures.is_empty(), "failed requests: {failures:#?}");
    assert!(
        farm.haproxy_log().contains("ferry_nodes/b is DOWN"),
        "HAProxy never took b out:\n{}",
        farm.haproxy_log()
    );

    // Everything again: only b's URLs are fetched from the origin again.
    let after = fetch_all(&client, &urls, 16).await;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for req in origin.requests() {
        *counts.entry(req.path).or_insert(0) += 1;
    }
    let refetched: HashSet<String> = urls
        .iter()
        .filter(|url| {
            let path = url
                .split_once("/u/")
                .map(|(_, p)| format!("/u/{p}"))
                .unwrap();
            counts.get(&path).copied().unwrap_or(0) > 1
        })
        .cloned()
        .collect();
    eprintln!(
        "farm: after losing node b, {} of 1000 URLs were fetched again from the origin \
         (b owned {}); split now {:?}",
        refetched.len(),
        owned_by_b.len(),
        split(&after)
    );
    assert_eq!(refetched, owned_by_b, "exactly b's share was refetched");
    assert!(after.iter().all(|(node, _)| node != "b"));
    let thrice = counts.values().filter(|n| **n > 2).count();
    assert_eq!(
        thrice, 0,
        "{thrice} URLs were fetched more than twice: redispatched to a node that \
         does not own them before b was taken out, then fetched again by their owner"
    );
}

/// Runs `ferry farm haproxy-config ARGS`.
fn haproxy_config(args: &[&str]) -> std::process::Output {
    Command::new(ferry())
        .args(["farm", "haproxy-config"])
        .args(args)
        .output()
        .unwrap()
}

/// Every configuration the command prints for valid input passes
/// `haproxy -c`: each form of node address, the interval's limits, IPv6
/// binds and the statistics page. (Node host names must resolve where
/// HAProxy checks the file, so the names here are `localhost`.)
#[test]
fn every_generated_config_passes_haproxy_check() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[&[&str]] = &[
        &["--node", "127.0.0.1:3128"],
        &[
            "--node",
            "a=127.0.0.1:1",
            "--node",
            "b=[::1]:65535",
            "--node",
            "c_1.x-y=localhost:8080",
            "--node",
            "LOCALHOST:9",
            "--node",
            "[::ffff:127.0.0.1]:3128",
        ],
        &["--node", "127.0.0.1:3128", "--check-interval", "1"],
        &["--node", "127.0.0.1:3128", "--check-interval", "2147483647"],
        &[
            "--node",
            "127.0.0.1:3128",
            "--listen",
            "[::]:3128",
            "--stats",
            "127.0.0.1:8404",
        ],
        &[
            "--node",
            "127.0.0.1:3128",
            "--listen",
            "127.0.0.1:65535",
            "--stats",
            "[::1]:65535",
        ],
    ];
    for (i, args) in cases.iter().enumerate() {
        let out = haproxy_config(args);
        assert!(
            out.status.success(),
            "{args:?} was refused: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cfg = dir.path().join(format!("haproxy-{i}.cfg"));
        std::fs::write(&cfg, &out.stdout).unwrap();
        let check = Command::new(haproxy_bin())
            .arg("-c")
            .arg("-f")
            .arg(&cfg)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "haproxy -c refused the configuration for {args:?}:\n{}{}\n{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    // The advice for the longest interval is three intervals, not a wrapped
    // product.
    let out = haproxy_config(&["--node", "127.0.0.1:3128", "--check-interval", "2147483647"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("--drain-period 6442451)"), "{text}");
}

/// Input that would make a configuration HAProxy rejects (or reads
/// differently) is refused: non-zero exit, a reason, nothing printed.
#[test]
fn bad_haproxy_config_input_is_refused_with_a_reason() {
    let cases: &[(&[&str], &str)] = &[
        (&["--node", "127.0.0.1:+80"], "is not a port"),
        (&["--node", ":080"], "is not a port"),
        (&["--node", ":80"], "the host is empty"),
        (&["--node", "127.0.0.1:080"], "is not a port"),
        (&["--node", "127.0.0.1:65536"], "is not a port"),
        (&["--node", "127.0.0.1:0"], "is not a port"),
        (&["--node", "a=1.2.3:80"], "is not an IPv4 address"),
        (&["--node", "::1:80"], "in brackets"),
        (&["--node", "a..b:80"], "is not a host name"),
        (&["--node", "h\nbackend evil:80"], "is not a host name"),
        (
            &["--node", "h:80\n    server evil 10.0.0.9:80"],
            "is not a host name",
        ),
        (&["--node", "a b=h:80"], "node name"),
        (
            &["--node", "h:80", "--check-interval", "0"],
            "--check-interval",
        ),
        (
            &["--node", "h:80", "--check-interval", "2147483648"],
            "--check-interval",
        ),
        (
            &["--node", "h:80", "--check-interval", "6148914691236517206"],
            "--check-interval",
        ),
        (
            &["--node", "h:80", "--check-interval", "18446744073709551615"],
            "--check-interval",
        ),
        (
            &["--node", "h:80", "--listen", "127.0.0.1:0"],
            "port other than 0",
        ),
        (
            &["--node", "h:80", "--stats", "[::]:0"],
            "port other than 0",
        ),
        (
            &["--node", "h:80", "--listen", "[fe80::1%2]:3128"],
            "IPv6 zone",
        ),
        (
            &[
                "--node",
                "h:80",
                "--listen",
                "0.0.0.0:3128",
                "--stats",
                "127.0.0.1:3128",
            ],
            "share a port",
        ),
    ];
    for (args, reason) in cases {
        let out = haproxy_config(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{args:?} was accepted:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            out.status.code().is_some(),
            "{args:?}: ferry did not exit cleanly (a panic?): {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?} printed a configuration");
        assert!(
            stderr.contains(reason),
            "{args:?}: expected {reason:?} in:\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
