//! The public HTTP caching test suite (npm `http-cache-tests` 0.4.5, the suite
//! behind cache-tests.fyi), run through the real binary as a forward proxy by
//! `conformance/run.mjs`. It fails when a test listed in
//! `conformance/passing.txt` stops passing (the ratchet) and prints tests that
//! newly pass. `scripts/test.sh` installs the suite (`npm ci --prefix conformance`).
//!
//! The other tests here hold the harness itself to its start-up: it reads
//! whole start-up lines (an address cut between two chunks once sent the whole
//! suite to another server on this machine), checks the address, checks that
//! it is talking to the Ferry and the origin it started, and stops everything
//! it started when it gives up. They use stand-ins for `ferry proxy`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The exit status of `run.mjs` when the start-up failed.
const STARTUP_FAILED: i32 = 3;
/// What `run.mjs` prints (on stderr) before exiting with [`STARTUP_FAILED`].
const STARTUP_FAILED_LINE: &str = "conformance: start-up failed: ";

/// The suite is timing-sensitive (tests that wait seconds and compare ages):
/// the tests here run one at a time so none slows another down.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `conformance/run.mjs` with `ferry` as the proxy binary.
fn run_harness(ferry: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let suite = root().join("conformance/node_modules/http-cache-tests/package.json");
    assert!(
        suite.exists(),
        "the HTTP caching test suite is not installed: run `npm ci --prefix conformance` \
         (scripts/test.sh does)"
    );
    Command::new("node")
        .arg(root().join("conformance/run.mjs"))
        .arg("--ferry")
        .arg(ferry)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run node (install Node.js to run the conformance suite)")
}

/// The harness's own account of a failed start-up, if that is how it ended.
fn startup_failure(out: &Output) -> Option<String> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .position(|l| l.starts_with(STARTUP_FAILED_LINE))
        .map(|i| stderr.lines().skip(i).collect::<Vec<_>>().join("\n"));
    match (out.status.code(), line) {
        (_, Some(line)) => Some(line),
        (Some(STARTUP_FAILED), None) => Some(format!("exit status {STARTUP_FAILED}")),
        _ => None,
    }
}

#[test]
fn http_caching_test_suite_keeps_every_listed_test_passing() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let out = run_harness(Path::new(common::ferry()), &[], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    if let Some(why) = startup_failure(&out) {
        panic!(
            "the conformance harness could not start Ferry and the suite's origin, so no \
             conformance test ran (this is not a caching failure):\n{why}\n\nstdout:\n{stdout}"
        );
    }
    assert!(
        out.status.success(),
        "conformance ratchet failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("required ") && stdout.contains("optimal "),
        "the suite printed no results:\n{stdout}\n{stderr}"
    );
}

/// The line reading and address checks on their own, with Ferry's start-up
/// output cut at every place (the chunks that broke the old matcher first).
#[test]
fn harness_reads_whole_start_up_lines_however_they_are_cut() {
    let out = Command::new("node")
        .arg(root().join("conformance/run.mjs"))
        .arg("--self-test")
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("self-test passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A stand-in for `ferry proxy`, chosen by `FAKE_FERRY_MODE`:
/// - `relay`: runs the real binary (`FAKE_FERRY_REAL`) and passes its stderr
///   on in 3-byte pieces 20 ms apart, so the start-up line reaches the harness
///   in many chunks with the address cut among them;
/// - `truncated`: prints a start-up line whose address is cut off, as the old
///   matcher read it, and waits;
/// - `stranger`: a server that is not Ferry (403 to everything, as the
///   machine's other server answered the suite);
/// - `no-origin`: answers `ok` to everything, `/healthz` included, and
///   forwards nothing.
const FAKE_FERRY: &str = r#"#!/usr/bin/env node
import { spawn } from 'node:child_process'
import { createServer } from 'node:http'
import { writeFileSync } from 'node:fs'

const mode = process.env.FAKE_FERRY_MODE
const say = line => process.stderr.write(line)
if (mode === 'relay') {
  const real = spawn(process.env.FAKE_FERRY_REAL, process.argv.slice(2), { stdio: ['ignore', 'inherit', 'pipe'] })
  writeFileSync(process.env.FAKE_FERRY_REAL_PID, `${real.pid}\n`)
  let queue = Promise.resolve()
  real.stderr.on('data', chunk => {
    for (let i = 0; i < chunk.length; i += 3) {
      const piece = chunk.subarray(i, i + 3)
      queue = queue.then(() => new Promise(resolve => setTimeout(() => { say(piece); resolve() }, 20)))
    }
  })
  real.on('exit', code => queue.then(() => process.exit(code ?? 1)))
} else if (mode === 'truncated') {
  say('ferry: caching in /nowhere\nferry: listening on http://127.0\n')
  setInterval(() => {}, 1000)
} else {
  const server = createServer((req, res) => {
    req.resume()
    if (mode === 'stranger') {
      res.writeHead(403, { server: 'keryx', 'content-type': 'text/plain' })
      res.end('forbidden\n')
    } else {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.end('ok\n')
    }
  })
  server.listen(0, '127.0.0.1', () => say(`ferry: listening on http://127.0.0.1:${server.address().port}\n`))
}
"#;

fn fake_ferry(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("fake-ferry.mjs");
    std::fs::write(&path, FAKE_FERRY).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The pids the harness said it started (`conformance: started ... (pid N)`).
fn started_pids(out: &Output) -> Vec<u32> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("conformance: started "))
        .filter_map(|l| l.rsplit_once("(pid ")?.1.strip_suffix(')')?.parse().ok())
        .collect()
}

/// Whether `pid` is a live process (a zombie has stopped).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(") ")?.1.chars().next()?;
            Some(state != 'Z' && state != 'X')
        })
        .unwrap_or(false)
}

fn kill(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
}

/// Whether everything the harness said it started has stopped (it sends
/// SIGKILL as it leaves); what is left is killed here.
fn all_stopped(out: &Output) -> Result<(), String> {
    let pids = started_pids(out);
    if pids.is_empty() {
        return Err("the harness named nothing it started".into());
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|p| running(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left: Vec<u32> = pids.iter().copied().filter(|p| running(*p)).collect();
    left.iter().copied().for_each(kill);
    match left.is_empty() {
        true => Ok(()),
        false => Err(format!("the harness left {left:?} running")),
    }
}

/// Runs the harness on a stand-in and returns its reason for giving up,
/// after checking it gave up at start-up and stopped what it started.
fn failed_start_up(mode: &str) -> String {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let fake = fake_ferry(dir.path());
    let started = Instant::now();
    // One quick test, so an old harness that runs the suite anyway ends soon.
    let out = run_harness(
        &fake,
        &["--id", "freshness-none"],
        &[("FAKE_FERRY_MODE", mode)],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stopped = all_stopped(&out);
    assert_eq!(
        out.status.code(),
        Some(STARTUP_FAILED),
        "the harness did not report a failed start-up:\n{}\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    if let Err(e) = stopped {
        panic!("{e}:\n{stderr}");
    }
    let why = startup_failure(&out).unwrap();
    assert!(why.starts_with(STARTUP_FAILED_LINE), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "giving up took {:?}",
        started.elapsed()
    );
    why
}

/// Ferry's start-up output reaching the harness in 3-byte chunks: the
/// address is read whole and the suite runs through the real Ferry.
#[test]
fn a_start_up_line_cut_into_chunks_still_gives_the_whole_address() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let fake = fake_ferry(dir.path());
    let real_pid = dir.path().join("real.pid");
    let out = run_harness(
        &fake,
        &["--id", "freshness-max-age"],
        &[
            ("FAKE_FERRY_MODE", "relay"),
            ("FAKE_FERRY_REAL", common::ferry()),
            ("FAKE_FERRY_REAL_PID", real_pid.to_str().unwrap()),
        ],
    );
    // The stand-in relays, so the real Ferry is its child, not the harness's:
    // stop it here.
    if let Some(pid) = std::fs::read_to_string(&real_pid)
        .ok()
        .and_then(|p| p.trim().parse().ok())
    {
        kill(pid);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}:\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("\"freshness-max-age\": true"),
        "the test did not pass through the real Ferry:\n{stdout}\n{stderr}"
    );
    if let Err(e) = all_stopped(&out) {
        panic!("{e}:\n{stderr}");
    }
}

#[test]
fn a_cut_off_address_fails_the_start_up_and_names_the_address() {
    let why = failed_start_up("truncated");
    assert!(why.contains("\"http://127.0\""), "{why}");
    assert!(why.contains("not http://127.0.0.1:PORT"), "{why}");
}

#[test]
fn a_server_that_is_not_ferry_fails_the_start_up_check() {
    let why = failed_start_up("stranger");
    assert!(why.contains("check 1 of 2"), "{why}");
    assert!(why.contains("/healthz"), "{why}");
    assert!(why.contains("403") && why.contains("keryx"), "{why}");
}

#[test]
fn a_proxy_that_does_not_reach_the_origin_fails_the_start_up_check() {
    let why = failed_start_up("no-origin");
    assert!(why.contains("check 2 of 2"), "{why}");
    assert!(why.contains("did not reach the origin"), "{why}");
}
