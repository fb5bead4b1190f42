//! Launches the real `ferry proxy` binary on 127.0.0.1:0 and reads the address
//! it reports, keeping its stdout (the access log) and stderr for assertions.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

pub struct Proxy {
    child: Child,
    addr: SocketAddr,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    cache_dir: Option<PathBuf>,
    _temp: Option<tempfile::TempDir>,
}

impl Proxy {
    /// Starts `bin proxy ARGS`. Unless the arguments say otherwise, it listens on
    /// 127.0.0.1:0 and caches in a fresh temporary directory.
    pub fn start(bin: &str, args: &[&str]) -> Proxy {
        Self::start_with_env(bin, args, &[])
    }

    pub fn start_with_env(bin: &str, args: &[&str], env: &[(&str, &str)]) -> Proxy {
        let mut cmd = Command::new(bin);
        cmd.arg("proxy").args(args);
        if !args.contains(&"--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        let mut temp = None;
        let mut cache_dir = None;
        if let Some(i) = args.iter().position(|a| *a == "--cache-dir") {
            cache_dir = args.get(i + 1).map(PathBuf::from);
        } else if !args.contains(&"--no-cache") {
            let dir = tempfile::tempdir().unwrap();
            cmd.arg("--cache-dir").arg(dir.path());
            cache_dir = Some(dir.path().to_path_buf());
            temp = Some(dir);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn ferry proxy");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        drain(child.stdout.take().unwrap(), stdout.clone(), None);
        let (tx, rx) = mpsc::channel();
        drain(child.stderr.take().unwrap(), stderr.clone(), Some(tx));
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "ferry proxy did not report a listen address; stderr:\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        Proxy {
            child,
            addr,
            stdout,
            stderr,
            cache_dir,
            _temp: temp,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn cache_dir(&self) -> Option<&Path> {
        self.cache_dir.as_deref()
    }

    /// Everything the proxy wrote to stdout so far (the access log by default).
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stdout holds at least `n` lines, up to `limit`.
    pub fn wait_stdout_lines(&self, n: usize, limit: Duration) -> Vec<String> {
        let deadline = Instant::now() + limit;
        loop {
            let lines: Vec<String> = self.stdout().lines().map(str::to_string).collect();
            if lines.len() >= n || Instant::now() >= deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY-free: libc::kill on a pid we own.
        let rc = unsafe_kill(self.child.id(), signal);
        assert_eq!(rc, 0, "kill({signal}) failed");
    }

    /// Waits for the process to exit, up to `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Reads one sample from the proxy's `/metrics` page (the line starting
    /// with `name`, labels included, e.g. `ferry_fetch_queue_length`).
    pub fn metric(&self, name: &str) -> Option<u64> {
        use std::io::Write;
        let mut stream = std::net::TcpStream::connect(self.addr).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: ferry\r\nConnection: close\r\n\r\n")
            .ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).ok()?;
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// Peak resident set size (VmHWM) in KiB, from /proc.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        proc_status_kib(self.child.id(), "VmHWM:")
    }

    /// Current resident set size (VmRSS) in KiB, from /proc.
    pub fn rss_kib(&self) -> Option<u64> {
        proc_status_kib(self.child.id(), "VmRSS:")
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.kill();
    }
}

fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[allow(unsafe_code)]
fn unsafe_kill(pid: u32, signal: i32) -> i32 {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(pid as i32, signal) }
}

fn drain(
    stream: impl Read + Send + 'static,
    sink: Arc<Mutex<String>>,
    listen: Option<mpsc::Sender<SocketAddr>>,
) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        let mut listen = listen;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if let Some(tx) = &listen {
                if let Some(rest) = line.trim().strip_prefix("ferry: listening on ") {
                    if let Ok(addr) = rest.trim_start_matches("http://").parse() {
                        let _ = tx.send(addr);
                        listen = None;
                    }
                }
            }
            sink.lock().unwrap().push_str(&line);
        }
    });
}
