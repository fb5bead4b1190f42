//! The proxy environment variables, and clearing them from the commands the
//! tests run so that a proxy set on the machine running the tests never
//! changes what they see.

/// Every variable curl (and `ferry get`, which reads them as curl does) takes
/// a proxy or a proxy exception from, in both cases.
pub const PROXY_VARS: &[&str] = &[
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

/// Removes [`PROXY_VARS`] from a command's environment.
pub trait ClearProxyEnv {
    fn clear_proxy_env(&mut self) -> &mut Self;
}

impl ClearProxyEnv for std::process::Command {
    fn clear_proxy_env(&mut self) -> &mut Self {
        for var in PROXY_VARS {
            self.env_remove(var);
        }
        self
    }
}

impl ClearProxyEnv for tokio::process::Command {
    fn clear_proxy_env(&mut self) -> &mut Self {
        for var in PROXY_VARS {
            self.env_remove(var);
        }
        self
    }
}
