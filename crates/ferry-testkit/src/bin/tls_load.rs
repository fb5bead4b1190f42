//! Load for the HTTPS-interception benchmark (`bench/run.sh tls`), which wrk
//! cannot make: it cannot send CONNECT.
//!
//!   tls_load PROXY URL CA_PEM CONNS SECONDS keepalive|handshake|plain
//!
//! `keepalive`: each connection sends CONNECT once, completes TLS trusting
//! only CA_PEM, then GETs URL (an `https://` URL) back to back. `handshake`:
//! every request on a new connection (CONNECT, TLS, one GET), to measure what
//! a warm leaf costs per new client connection. `plain`: absolute-form GETs
//! of URL (an `http://` URL) over keep-alive, the hit path without TLS.
//! Prints one JSON line: requests per second, p50 and p99 in milliseconds,
//! errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    KeepAlive,
    Handshake,
    Plain,
}

struct Job {
    proxy: String,
    url: http::Uri,
    tls: tokio_rustls::TlsConnector,
    mode: Mode,
    until: Instant,
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 7 {
        eprintln!("usage: tls_load PROXY URL CA_PEM CONNS SECONDS keepalive|handshake|plain");
        std::process::exit(2);
    }
    let url: http::Uri = args[2].parse().expect("URL");
    let pem = std::fs::read(&args[3]).expect("CA file");
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots
            .add(cert.expect("CA certificate"))
            .expect("CA certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let conns: usize = args[4].parse().expect("CONNS");
    let seconds: u64 = args[5].parse().expect("SECONDS");
    let mode = match args[6].as_str() {
        "keepalive" => Mode::KeepAlive,
        "handshake" => Mode::Handshake,
        "plain" => Mode::Plain,
        other => panic!("unknown mode {other}"),
    };
    let job = Arc::new(Job {
        proxy: args[1].clone(),
        url,
        tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
        mode,
        until: Instant::now() + Duration::from_secs(seconds),
    });
    let started = Instant::now();
    let tasks: Vec<_> = (0..conns).map(|_| tokio::spawn(run(job.clone()))).collect();
    let mut latencies = Vec::new();
    let mut errors = 0u64;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d: &Duration| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{{\"rps\":{:.1},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"requests\":{},\"errors\":{}}}",
        latencies.len() as f64 / elapsed,
        pct(0.5),
        pct(0.99),
        latencies.len(),
        errors
    );
}

/// One connection's loop: its latencies and its errors.
async fn run(job: Arc<Job>) -> (Vec<Duration>, u64) {
    let mut latencies = Vec::new();
    let mut errors = 0;
    while Instant::now() < job.until {
        let result = match job.mode {
            Mode::Plain => plain(&job, &mut latencies).await,
            Mode::KeepAlive | Mode::Handshake => tunnel(&job, &mut latencies).await,
        };
        if result.is_err() {
            errors += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    (latencies, errors)
}

async fn plain(job: &Job, latencies: &mut Vec<Duration>) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(&job.proxy).await?;
    stream.set_nodelay(true)?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\n\r\n",
        job.url,
        job.url.authority().map_or("", |a| a.as_str())
    );
    let mut buf = Vec::with_capacity(16 * 1024);
    while Instant::now() < job.until {
        let t = Instant::now();
        exchange(&mut stream, request.as_bytes(), &mut buf).await?;
        latencies.push(t.elapsed());
    }
    Ok(())
}

async fn tunnel(job: &Job, latencies: &mut Vec<Duration>) -> std::io::Result<()> {
    let authority = job.url.authority().expect("URL authority").clone();
    let port = authority.port_u16().unwrap_or(443);
    let t = Instant::now();
    let mut tcp = TcpStream::connect(&job.proxy).await?;
    tcp.set_nodelay(true)?;
    let connect = format!(
        "CONNECT {}:{port} HTTP/1.1\r\nHost: {}:{port}\r\n\r\n",
        authority.host(),
        authority.host()
    );
    tcp.write_all(connect.as_bytes()).await?;
    let mut head = Vec::new();
    read_head(&mut tcp, &mut head).await?;
    if !head.starts_with(b"HTTP/1.1 200") {
        return Err(std::io::Error::other("CONNECT refused"));
    }
    let name = ServerName::try_from(authority.host().to_string())
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut tls = job.tls.connect(name, tcp).await?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\n\r\n",
        job.url.path(),
        authority
    );
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut first = true;
    loop {
        let start = if first { t } else { Instant::now() };
        first = false;
        exchange(&mut tls, request.as_bytes(), &mut buf).await?;
        latencies.push(start.elapsed());
        if job.mode == Mode::Handshake || Instant::now() >= job.until {
            return Ok(());
        }
    }
}

/// Sends `request` and reads one response with a Content-Length body.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> std::io::Result<()> {
    stream.write_all(request).await?;
    buf.clear();
    let body_start = read_head(stream, buf).await?;
    let head = String::from_utf8_lossy(&buf[..body_start]).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200") {
        return Err(std::io::Error::other("not a 200"));
    }
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| std::io::Error::other("no Content-Length"))?;
    let mut have = buf.len() - body_start;
    let mut chunk = [0u8; 16 * 1024];
    while have < len {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        have += n;
    }
    Ok(())
}

/// Reads until the end of a response head; where the body starts in `buf`.
async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> std::io::Result<usize> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(i + 4);
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
