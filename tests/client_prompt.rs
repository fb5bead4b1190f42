//! `ferry client` end to end, against a real `ferry proxy` and a local origin:
//! scripted through piped standard input, and interactively through a
//! pseudo-terminal, where `get` must give the prompt back while the download
//! is still held at the origin.
//!
//! The pseudo-terminal is opened with `openpty(3)` from `libc` (already a
//! dev-dependency of the workspace) rather than `expectrl`/`rexpect`, which
//! would need a new dev-dependency in the root manifest; the helper below is a
//! small expect-style reader that also answers the terminal's cursor-position
//! query like a real terminal would.
#![allow(clippy::unwrap_used, clippy::expect_used, unsafe_code)]

mod common;

use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

const LIMIT: Duration = Duration::from_secs(60);

fn client_command(proxy: &Proxy, dir: &Path, home: &Path) -> Command {
    let mut cmd = Command::new(ferry());
    cmd.arg("client")
        .arg("--proxy")
        .arg(proxy.url())
        .arg("--output-dir")
        .arg(dir)
        .clear_proxy_env();
    // History goes to a throwaway place.
    cmd.env("HOME", home).env("XDG_DATA_HOME", home);
    cmd
}

/// `ferry client` with its standard input, output and error piped.
fn piped_client(proxy: &Proxy, dir: &Path, home: &Path) -> Child {
    client_command(proxy, dir, home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn files(dir: &Path) -> Vec<String> {
    dir_names(dir)
}

fn wait_exit(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "ferry client did not exit");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn piped_commands_fetch_in_the_background_and_quit_waits_for_them() {
    let gate = Gate::new();
    let held = gate.clone();
    let origin = Origin::start(move |req| match req.path.as_str() {
        "/first" => Reply::html(page("First page")),
        "/second" => Reply::html(page("Second page")).gate(&held),
        _ => Reply::new(404),
    })
    .await;
    let proxy = proxy(&["--no-cache"]);
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();

    let mut child = piped_client(&proxy, dir.path(), home.path());
    let mut stdin = child.stdin.take().unwrap();
    writeln!(
        stdin,
        "# fetch two pages\nget {} {}\njobs\nquit",
        origin.url("/first"),
        origin.url("/second")
    )
    .unwrap();
    drop(stdin);

    // `quit` was read, but the second download is held at the origin: the
    // client must still be running, waiting for it.
    assert!(wait_until(LIMIT, || gate.waiting() == 1).await);
    assert!(
        child.try_wait().unwrap().is_none(),
        "quit must wait for running downloads"
    );
    gate.release(1);

    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(files(dir.path()), ["First page.html", "Second page.html"]);
    assert!(
        stdout.contains(&format!("[1] get {}", origin.url("/first"))),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("[2] get {}", origin.url("/second"))),
        "{stdout}"
    );
    assert!(stdout.contains("First page.html  200 OK"), "{stdout}");
    assert!(stdout.contains("Second page.html  200 OK"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn piped_failures_and_unknown_commands_give_a_failing_exit_code() {
    let origin = Origin::start(|_| Reply::new(404)).await;
    let proxy = proxy(&["--no-cache"]);
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let mut child = piped_client(&proxy, dir.path(), home.path());
    // No `quit`: the end of input ends the session too.
    writeln!(
        child.stdin.take().unwrap(),
        "fetch {}\nget {}",
        origin.url("/x"),
        origin.url("/missing")
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("unknown command \"fetch\""), "{stdout}");
    assert!(stdout.contains("✗ 404 Not Found"), "{stdout}");
    assert!(files(dir.path()).is_empty());
}

/// A child process on a pseudo-terminal, with everything it prints collected.
struct Pty {
    child: Child,
    master: std::fs::File,
    output: Arc<Mutex<Vec<u8>>>,
}

impl Pty {
    fn spawn(mut cmd: Command) -> Pty {
        let mut master_fd = 0;
        let mut slave_fd = 0;
        let size = libc::winsize {
            ws_row: 40,
            ws_col: 200,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two descriptors into the pointed-to ints;
        // name and termios may be null; the winsize outlives the call.
        let rc = unsafe {
            libc::openpty(
                &mut master_fd,
                &mut slave_fd,
                std::ptr::null_mut(),
                std::ptr::null(),
                &size,
            )
        };
        assert_eq!(rc, 0, "openpty failed");
        // SAFETY: both descriptors were just opened by openpty and are owned here.
        let (master, slave) = unsafe {
            (
                OwnedFd::from_raw_fd(master_fd),
                OwnedFd::from_raw_fd(slave_fd),
            )
        };
        cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave))
            .env("TERM", "xterm");
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                // A session of its own with the terminal as controlling tty,
                // as a shell would start it.
                libc::setsid();
                libc::ioctl(0, libc::TIOCSCTTY, 0);
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        drop(cmd); // closes our copies of the slave side
        let master = std::fs::File::from(master);
        let output = Arc::new(Mutex::new(Vec::new()));
        let reader = master.try_clone().unwrap();
        let answer = master.try_clone().unwrap();
        let sink = output.clone();
        std::thread::spawn(move || {
            use std::io::Read;
            let (mut reader, mut answer) = (reader, answer);
            let mut buf = [0u8; 4096];
            // Ends with EIO once the child has exited and the slave is closed.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let chunk = &buf[..n];
                // Answer "where is the cursor?" as a terminal would (column 1).
                if chunk.windows(4).any(|w| w == b"\x1b[6n") {
                    let _ = answer.write_all(b"\x1b[1;1R");
                }
                sink.lock().unwrap().extend_from_slice(chunk);
            }
        });
        Pty {
            child,
            master,
            output,
        }
    }

    /// Everything printed so far, escape sequences included.
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// Waits until the output after byte `from` contains `needle`; returns the
    /// byte offset just past it.
    fn expect_from(&self, from: usize, needle: &str) -> usize {
        let deadline = Instant::now() + LIMIT;
        loop {
            {
                let out = self.output.lock().unwrap();
                if let Some(i) = out[from.min(out.len())..]
                    .windows(needle.len())
                    .position(|w| w == needle.as_bytes())
                {
                    return from + i + needle.len();
                }
            }
            assert!(
                Instant::now() < deadline,
                "did not see {needle:?} after byte {from}; output so far:\n{:?}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn type_line(&mut self, line: &str) {
        self.master.write_all(line.as_bytes()).unwrap();
        self.master.write_all(b"\r").unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn on_a_terminal_get_returns_to_the_prompt_before_the_fetch_ends() {
    let gate = Gate::new();
    let held = gate.clone();
    let origin = Origin::start(move |_| Reply::html(page("Held page")).gate(&held)).await;
    let proxy = proxy(&["--no-cache"]);
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let url = origin.url("/held");

    let mut pty = Pty::spawn(client_command(&proxy, dir.path(), home.path()));
    let at = pty.expect_from(0, "ferry> ");

    pty.type_line(&format!("get {url}"));
    // The job is announced and the prompt is back...
    let at = pty.expect_from(at, &format!("[1] get {url}"));
    let at = pty.expect_from(at, "ferry> ");
    // ...while the response is still held at the origin and nothing is saved.
    assert!(wait_until(LIMIT, || gate.waiting() == 1).await);
    assert!(files(dir.path()).iter().all(|n| n.ends_with(".part")));

    // The prompt takes commands meanwhile.
    pty.type_line("jobs");
    let at = pty.expect_from(at, "[1] running");
    let at = pty.expect_from(at, "ferry> ");

    // A half-typed line survives the result being printed above it.
    pty.master.write_all(b"hel").unwrap();
    let at = pty.expect_from(at, "hel");
    gate.release(1);
    let at = pty.expect_from(at, "Held page.html  200 OK");
    // rustyline redraws the prompt and the pending input below the result.
    let at = pty.expect_from(at, "ferry> ");
    let at = pty.expect_from(at, "hel");
    pty.type_line("p");
    let at = pty.expect_from(at, "get URL [URL...]");
    let _ = pty.expect_from(at, "ferry> ");

    pty.type_line("quit");
    let status = wait_exit(&mut pty.child);
    assert!(status.success(), "output:\n{}", pty.text());
    assert_eq!(files(dir.path()), ["Held page.html"]);
    // History was kept for the next session.
    let history = std::fs::read_to_string(home.path().join("ferry/client_history")).unwrap();
    assert!(history.contains(&format!("get {url}")), "{history}");
}
