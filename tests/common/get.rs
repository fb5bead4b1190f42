//! Running `ferry get`: the command, with a clean proxy environment, and what
//! came of it.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use super::{ClearProxyEnv, Origin, Proxy, ferry};

/// Generous bound for one `ferry get` run; never a timing assertion.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// How a `ferry get` run ended.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Runs `cmd` to the end (within a generous bound) and collects its output.
    pub async fn of(mut cmd: tokio::process::Command) -> Run {
        let out = tokio::time::timeout(RUN_LIMIT, cmd.output())
            .await
            .expect("ferry get did not finish")
            .unwrap();
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Both outputs, for assertion messages.
    pub fn both(&self) -> String {
        format!("--- stdout:\n{}--- stderr:\n{}", self.stdout, self.stderr)
    }
}

/// `ferry get ARGS...` with no proxy variables but those in `env`; no
/// standard input, output piped, killed when dropped.
pub fn get_command(args: &[&str], env: &[(&str, &str)]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(ferry());
    cmd.arg("get").args(args).clear_proxy_env();
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// `ferry get --proxy PROXY_URL --output-dir DIR ARGS...`, as [`get_command`].
pub fn get_command_via(proxy_url: &str, dir: &Path, args: &[&str]) -> tokio::process::Command {
    let mut cmd = get_command(&["--proxy", proxy_url, "--output-dir"], &[]);
    cmd.arg(dir).args(args);
    cmd
}

/// Runs `ferry get ARGS...` with `env`, as [`get_command`].
pub async fn ferry_get_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    Run::of(get_command(args, env)).await
}

/// Runs `ferry get --proxy PROXY_URL --output-dir DIR ARGS...`.
pub async fn ferry_get_via(proxy_url: &str, dir: &Path, args: &[&str]) -> Run {
    Run::of(get_command_via(proxy_url, dir, args)).await
}

/// Runs `ferry get --proxy PROXY --output-dir DIR ARGS...` through a proxy
/// started by the test.
pub async fn ferry_get(proxy: &Proxy, dir: &Path, args: &[&str]) -> Run {
    ferry_get_via(&proxy.url(), dir, args).await
}

/// Runs `ferry get` through `proxy` into `dir` on the URLs of `paths` at
/// `origin`, in that order.
pub async fn ferry_get_paths(proxy: &Proxy, dir: &Path, origin: &Origin, paths: &[&str]) -> Run {
    let urls: Vec<String> = paths.iter().map(|p| origin.url(p)).collect();
    let args: Vec<&str> = urls.iter().map(String::as_str).collect();
    ferry_get(proxy, dir, &args).await
}
