//! `ferry top`: a live text view of a running proxy, in the spirit of
//! `traffic_top` and `varnishstat`. It reads the proxy's `GET /api/stats`
//! (one HTTP/1.1 request in origin form on a fresh connection, so the proxy
//! answers it as its own page) every few seconds and redraws an 80-column
//! frame. No raw mode: the terminal needs no restoring, and Ctrl-C just ends it.
//!
//! The JSON is read tolerantly: every field may be missing, `null` or of
//! another type than expected, and the frame shows what there is. Every
//! string in it may come from a client (URLs, hosts), so each is cleaned of
//! control and invisible formatting characters and cut to its column before
//! it reaches the terminal.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use ferry_client::proxy_env::{DEFAULT_PROXY, ProxyEndpoint};
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::timeout;

mod frame;
mod stats;
#[cfg(test)]
mod tests;
mod text;

use frame::{WIDTH, render};
use stats::{Stats, parse};
use text::{clean, wrap_text};

/// Where the proxy serves its figures.
pub const STATS_PATH: &str = "/api/stats";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// For the whole exchange once connected: head and body.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// A larger answer is not a stats reading.
const MAX_BODY: usize = 16 << 20;

#[derive(Debug, Clone, clap::Args)]
pub struct TopArgs {
    /// The proxy to watch, `http://host[:port]` (port 3128 if none).
    #[arg(short = 'x', long, value_name = "URL", default_value = DEFAULT_PROXY)]
    pub proxy: String,

    /// Seconds between readings (fractions allowed, at least 0.1).
    #[arg(long, value_name = "SECS", default_value = "2", value_parser = parse_interval)]
    pub interval: Duration,

    /// Print one reading, without escape codes, and exit (status 1 if the
    /// proxy cannot be read).
    #[arg(long)]
    pub once: bool,
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(0.1..=86_400.0).contains(&secs) {
        return Err("the interval must be between 0.1 and 86400 seconds".into());
    }
    Ok(Duration::from_secs_f64(secs))
}

pub fn run(args: TopArgs) -> anyhow::Result<ExitCode> {
    let proxy = ProxyEndpoint::parse(&args.proxy, "--proxy")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        if args.once {
            let stats = read(&proxy).await?;
            let frame = render(&stats, now_ms());
            show(&frame, Screen::Plain)?;
            Ok(ExitCode::SUCCESS)
        } else {
            watch(&proxy, args.interval).await
        }
    })
}

/// Reads and draws until Ctrl-C (or until standard output goes away).
async fn watch(proxy: &ProxyEndpoint, interval: Duration) -> anyhow::Result<ExitCode> {
    let tty = std::io::stdout().is_terminal();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut first = true;
    loop {
        let frame = tokio::select! {
            _ = &mut ctrl_c => break,
            read = read(proxy) => match read {
                Ok(stats) => render(&stats, now_ms()),
                Err(err) => error_frame(proxy, &err, interval),
            },
        };
        let screen = match (tty, first) {
            (false, true) => Screen::Plain,
            (false, false) => Screen::PlainAfterFrame,
            (true, true) => Screen::TerminalFirst,
            (true, false) => Screen::Terminal,
        };
        if !show(&frame, screen)? {
            break;
        }
        first = false;
        tokio::select! {
            _ = &mut ctrl_c => break,
            () = tokio::time::sleep(interval) => {}
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Screen {
    /// Just the lines.
    Plain,
    /// The lines after a blank line (frames in a pipe or file).
    PlainAfterFrame,
    /// Clear the screen, then draw from the top left.
    TerminalFirst,
    /// Draw over the last frame from the top left, clearing what it leaves.
    Terminal,
}

/// Writes a frame; `false` when standard output has gone (a closed pipe).
fn show(frame: &[String], screen: Screen) -> anyhow::Result<bool> {
    let escapes = matches!(screen, Screen::Terminal | Screen::TerminalFirst);
    let mut text = String::new();
    match screen {
        Screen::Plain => {}
        Screen::PlainAfterFrame => text.push('\n'),
        Screen::TerminalFirst => text.push_str("\x1b[H\x1b[2J"),
        Screen::Terminal => text.push_str("\x1b[H"),
    }
    for line in frame {
        text.push_str(line);
        if escapes {
            // Erase what a longer line of the last frame left to the right.
            text.push_str("\x1b[K");
        }
        text.push('\n');
    }
    if escapes {
        // And the lines below, if the last frame was taller.
        text.push_str("\x1b[J");
    }
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(anyhow!("writing to standard output: {e}")),
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// One reading; the error is one line of plain text.
async fn read(proxy: &ProxyEndpoint) -> anyhow::Result<Stats> {
    let result = match fetch(proxy).await {
        Ok(body) => parse(&body)
            .with_context(|| format!("bad answer from http://{}{STATS_PATH}", proxy.display())),
        Err(err) => Err(err),
    };
    result.map_err(|err| anyhow!(clean(&format!("{err:#}"))))
}

/// `GET /api/stats` on a fresh connection; the body of a 200 answer.
async fn fetch(proxy: &ProxyEndpoint) -> anyhow::Result<Bytes> {
    let addr = proxy.display();
    let connect = TcpStream::connect((proxy.host.as_str(), proxy.port));
    let stream = match timeout(CONNECT_TIMEOUT, connect).await {
        Err(_) => bail!(
            "cannot reach the proxy at {addr}: no connection within {} s",
            CONNECT_TIMEOUT.as_secs()
        ),
        Ok(Err(e)) => bail!(
            "cannot reach the proxy at {addr}: {}; is `ferry proxy` running there? (choose another with --proxy)",
            ferry_client::plain_io(&e)
        ),
        Ok(Ok(stream)) => stream,
    };
    let _ = stream.set_nodelay(true);
    let mut request = Request::builder()
        .method(Method::GET)
        .uri(STATS_PATH)
        .header(header::HOST, addr.as_str())
        .header(
            header::USER_AGENT,
            concat!("ferry-top/", env!("CARGO_PKG_VERSION")),
        )
        .header(header::ACCEPT, "application/json");
    if let Some(auth) = &proxy.authorization {
        request = request.header(header::PROXY_AUTHORIZATION, auth.as_str());
    }
    let request = request
        .body(Empty::<Bytes>::new())
        .context("building the request")?;
    let exchange = async {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .with_context(|| format!("talking to the proxy at {addr}"))?;
        // Drives the connection; stopped when this reading ends, whichever way.
        let _driver = AbortOnDrop(tokio::spawn(async move {
            let _ = connection.await;
        }));
        let response = sender
            .send_request(request)
            .await
            .with_context(|| format!("talking to the proxy at {addr}"))?;
        let status = response.status();
        if status != StatusCode::OK {
            let hint = match status {
                StatusCode::NOT_FOUND => " (a proxy without the stats API?)",
                StatusCode::FORBIDDEN => " (is this client allowed to use it?)",
                StatusCode::MISDIRECTED_REQUEST => {
                    " (the proxy does not know itself by this name: use its address, or start it with --public-name)"
                }
                _ => "",
            };
            bail!("the proxy at {addr} answered {status} for {STATS_PATH}{hint}");
        }
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| anyhow!("reading the answer from the proxy at {addr}: {e}"))?;
        Ok(body.to_bytes())
    };
    match timeout(RESPONSE_TIMEOUT, exchange).await {
        Ok(result) => result,
        Err(_) => bail!(
            "no answer from the proxy at {addr} within {} s",
            RESPONSE_TIMEOUT.as_secs()
        ),
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The frame shown while the proxy cannot be read; the next reading is tried
/// after `interval`.
fn error_frame(proxy: &ProxyEndpoint, err: &anyhow::Error, interval: Duration) -> Vec<String> {
    let lines = [
        format!("ferry top: http://{}{STATS_PATH}", proxy.display()),
        String::new(),
        format!("error: {err:#}"),
        String::new(),
        format!("retrying every {interval:?}; Ctrl-C to quit"),
    ];
    lines.iter().flat_map(|l| wrap_text(l, WIDTH)).collect()
}
