//! Which proxy a URL is fetched through: `--proxy`, else the environment as
//! curl reads it, else `http://127.0.0.1:3128`.
//!
//! Environment (curl's rules): `http_proxy` (lower case only: `HTTP_PROXY` can
//! be set by a CGI request header) for `http://` URLs; `https_proxy` or
//! `HTTPS_PROXY` for `https://` URLs; then `all_proxy` / `ALL_PROXY`;
//! `no_proxy` / `NO_PROXY` lists hosts that skip the environment's proxy
//! (`*` = every host, `example.com` and `.example.com` = the domain and its
//! subdomains, `*.example.com` = subdomains, IP addresses and CIDR ranges).
//!
//! Ferry's client never connects to an origin directly, so a host matched by
//! `NO_PROXY` is fetched through the default proxy (`http://127.0.0.1:3128`)
//! instead of the environment's; `--proxy` always wins.
//!
//! Credentials in the proxy URL (`http://user:pass@host:port`) become a
//! `Proxy-Authorization: Basic` header. A proxy URL without a port uses 3128,
//! Ferry's default (curl would use 1080).
//!
//! Written by hand rather than with hyper-util's `client::proxy::matcher`
//! (hyper-util 0.1.21, checked against its source), which does not reproduce
//! these rules:
//! - its `NO_PROXY` accepts `*` only alone: `*.example.com` is kept as a
//!   literal domain and never matches, and an entry with a port
//!   (`example.com:8080`) never matches either;
//! - a proxy URL without a port comes back without one (Ferry's is 3128);
//! - a value it cannot parse, or a `socks5://` proxy, is silently treated as
//!   unset or accepted, where Ferry reports the bad value and its variable;
//! - `Matcher::from_env` reads `HTTP_PROXY` as well as `http_proxy` (its
//!   builder could be fed the lower-case value alone, but the three points
//!   above would remain).

use std::net::IpAddr;

use base64::Engine;
use percent_encoding::percent_decode_str;
use url::Url;

use crate::error::ClientError;

/// The proxy used when nothing else is configured.
pub const DEFAULT_PROXY: &str = "http://127.0.0.1:3128";

/// Port for a proxy URL that names none.
const DEFAULT_PROXY_PORT: u16 = 3128;

/// Where the client connects, and how it authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyEndpoint {
    pub host: String,
    pub port: u16,
    /// The whole `Proxy-Authorization` header value, if credentials were given.
    pub authorization: Option<String>,
    /// Where this proxy came from, for messages (`--proxy`, `http_proxy`, `default`).
    pub origin: &'static str,
}

impl ProxyEndpoint {
    /// `host:port` for messages (credentials never shown).
    pub fn display(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Parses a proxy URL (`http://user:pass@host:port`, or `host:port`).
    pub fn parse(input: &str, origin: &'static str) -> Result<ProxyEndpoint, ClientError> {
        let bad = |reason: &str| ClientError::BadProxy {
            input: redact(input),
            origin,
            reason: reason.to_string(),
        };
        let trimmed = input.trim();
        let with_scheme = if trimmed.contains("://") {
            trimmed.to_string()
        } else {
            format!("http://{trimmed}")
        };
        let url = Url::parse(&with_scheme).map_err(|e| bad(&e.to_string()))?;
        if url.scheme() != "http" {
            return Err(bad(&format!(
                "scheme {}:// is not supported; the proxy is spoken to in plain HTTP (http://)",
                url.scheme()
            )));
        }
        let host = match url.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(h) => h.to_string(),
            None => return Err(bad("no host")),
        };
        // `Url` fills in 80 for http://host; only an explicit port counts.
        let port = explicit_port(trimmed).unwrap_or(DEFAULT_PROXY_PORT);
        let authorization = if url.username().is_empty() && url.password().is_none() {
            None
        } else {
            let user = percent_decode_str(url.username()).decode_utf8_lossy();
            let pass = percent_decode_str(url.password().unwrap_or("")).decode_utf8_lossy();
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
            Some(format!("Basic {token}"))
        };
        Ok(ProxyEndpoint {
            host,
            port,
            authorization,
            origin,
        })
    }
}

/// The port written in a proxy URL, if any (after the last `:` of the authority).
fn explicit_port(input: &str) -> Option<u16> {
    let rest = input.split_once("://").map_or(input, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (_, port) = host_port.rsplit_once(':')?;
    if host_port.starts_with('[') && !host_port[..host_port.len() - port.len()].ends_with("]:") {
        return None;
    }
    port.parse().ok()
}

/// A proxy URL with its password hidden.
fn redact(input: &str) -> String {
    match Url::parse(input) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => input.to_string(),
    }
}

/// The proxy settings read from the environment once, at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyEnv {
    pub http: Option<String>,
    pub https: Option<String>,
    pub all: Option<String>,
    pub no_proxy: Option<String>,
}

impl ProxyEnv {
    /// Reads the process environment.
    pub fn from_env() -> ProxyEnv {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `get` (lower case first, as curl does); empty values count as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> ProxyEnv {
        let first = |names: &[&str]| {
            names
                .iter()
                .filter_map(|n| get(n))
                .find(|v| !v.trim().is_empty())
        };
        ProxyEnv {
            http: first(&["http_proxy"]),
            https: first(&["https_proxy", "HTTPS_PROXY"]),
            all: first(&["all_proxy", "ALL_PROXY"]),
            no_proxy: first(&["no_proxy", "NO_PROXY"]),
        }
    }
}

/// Chooses the proxy for each URL.
#[derive(Debug, Clone)]
pub struct ProxySelector {
    flag: Option<ProxyEndpoint>,
    env: ProxyEnv,
}

impl ProxySelector {
    /// `flag` is `--proxy`, already validated at start so a typo fails once, early.
    pub fn new(flag: Option<&str>, env: ProxyEnv) -> Result<ProxySelector, ClientError> {
        let flag = flag
            .map(|p| ProxyEndpoint::parse(p, "--proxy"))
            .transpose()?;
        Ok(ProxySelector { flag, env })
    }

    /// The proxy for `url`.
    pub fn select(&self, url: &Url) -> Result<ProxyEndpoint, ClientError> {
        if let Some(flag) = &self.flag {
            return Ok(flag.clone());
        }
        let host = url.host_str().unwrap_or("");
        let excluded = self
            .env
            .no_proxy
            .as_deref()
            .is_some_and(|list| no_proxy_matches(list, host));
        if !excluded {
            let from_env = match url.scheme() {
                "https" => self.env.https.as_deref().map(|v| (v, "https_proxy")),
                _ => self.env.http.as_deref().map(|v| (v, "http_proxy")),
            }
            .or_else(|| self.env.all.as_deref().map(|v| (v, "all_proxy")));
            if let Some((value, origin)) = from_env {
                return ProxyEndpoint::parse(value, origin);
            }
        }
        let origin = if excluded {
            "default, host matched no_proxy"
        } else {
            "default"
        };
        ProxyEndpoint::parse(DEFAULT_PROXY, origin)
    }
}

/// Whether `host` is listed in a `NO_PROXY` value.
pub fn no_proxy_matches(list: &str, host: &str) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    if host.is_empty() {
        return false;
    }
    let host_ip: Option<IpAddr> = host.parse().ok();
    list.split([',', ' ', '\t'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            let entry = entry.to_ascii_lowercase();
            if let Some(ip) = host_ip {
                let bare = entry.trim_start_matches('[').trim_end_matches(']');
                if let Ok(net) = bare.parse::<ipnet::IpNet>() {
                    return net.contains(&ip);
                }
                return bare.parse::<IpAddr>().is_ok_and(|e| e == ip);
            }
            // Domain entries: an optional port is ignored, as curl does.
            let entry = entry.split(':').next().unwrap_or("");
            let domain = entry
                .trim_start_matches("*.")
                .trim_start_matches('.')
                .trim_end_matches('.');
            if domain.is_empty() {
                return false;
            }
            let subdomains_only = entry.starts_with("*.");
            (host == domain && !subdomains_only)
                || (host.len() > domain.len()
                    && host.ends_with(domain)
                    && host.as_bytes()[host.len() - domain.len() - 1] == b'.')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_proxy_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "anything.example", true),
            ("example.com", "example.com", true),
            ("example.com", "www.example.com", true),
            ("example.com", "badexample.com", false),
            (".example.com", "example.com", true),
            (".example.com", "a.b.example.com", true),
            ("*.example.com", "www.example.com", true),
            ("*.example.com", "example.com", false),
            ("EXAMPLE.com", "Example.COM", true),
            ("example.com:8080", "example.com", true),
            ("localhost, 127.0.0.1", "127.0.0.1", true),
            ("localhost,127.0.0.1", "localhost", true),
            ("10.0.0.0/8", "10.1.2.3", true),
            ("10.0.0.0/8", "11.1.2.3", false),
            ("::1", "[::1]", true),
            ("[::1]", "[::1]", true),
            ("fd00::/8", "[fd12::1]", true),
            ("127.0.0.1", "localhost", false),
            ("", "example.com", false),
            ("other.org,,", "example.com", false),
            ("example.com", "example.com.", true),
        ];
        for (list, host, want) in cases {
            assert_eq!(no_proxy_matches(list, host), *want, "{list:?} vs {host:?}");
        }
    }

    fn env(vars: &[(&str, &str)]) -> ProxyEnv {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ProxyEnv::from_lookup(move |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    /// (--proxy, environment, URL, wanted host:port, wanted origin)
    type SelectionCase<'a> = (
        Option<&'a str>,
        &'a [(&'a str, &'a str)],
        &'a str,
        &'a str,
        &'a str,
    );

    #[test]
    fn selection_follows_curl() {
        let cases: &[SelectionCase] = &[
            (None, &[], "http://e.com/", "127.0.0.1:3128", "default"),
            (
                None,
                &[("http_proxy", "http://p:8080")],
                "http://e.com/",
                "p:8080",
                "http_proxy",
            ),
            // Upper-case HTTP_PROXY is ignored (curl: CGI header injection).
            (
                None,
                &[("HTTP_PROXY", "http://p:8080")],
                "http://e.com/",
                "127.0.0.1:3128",
                "default",
            ),
            (
                None,
                &[("http_proxy", "http://p:8080")],
                "https://e.com/",
                "127.0.0.1:3128",
                "default",
            ),
            (
                None,
                &[("HTTPS_PROXY", "s:1")],
                "https://e.com/",
                "s:1",
                "https_proxy",
            ),
            (
                None,
                &[("https_proxy", "lower:1"), ("HTTPS_PROXY", "upper:2")],
                "https://e.com/",
                "lower:1",
                "https_proxy",
            ),
            (
                None,
                &[("ALL_PROXY", "all:9")],
                "http://e.com/",
                "all:9",
                "all_proxy",
            ),
            (
                None,
                &[("ALL_PROXY", "all:9")],
                "https://e.com/",
                "all:9",
                "all_proxy",
            ),
            (
                None,
                &[("http_proxy", "p:1"), ("all_proxy", "all:9")],
                "http://e.com/",
                "p:1",
                "http_proxy",
            ),
            (
                None,
                &[("http_proxy", "")],
                "http://e.com/",
                "127.0.0.1:3128",
                "default",
            ),
            (
                None,
                &[("http_proxy", "p:1"), ("no_proxy", "e.com")],
                "http://www.e.com/",
                "127.0.0.1:3128",
                "default, host matched no_proxy",
            ),
            (
                None,
                &[("http_proxy", "p:1"), ("NO_PROXY", "*")],
                "http://x.org/",
                "127.0.0.1:3128",
                "default, host matched no_proxy",
            ),
            (
                Some("http://flag:1"),
                &[("http_proxy", "p:1"), ("no_proxy", "*")],
                "http://x.org/",
                "flag:1",
                "--proxy",
            ),
            (
                None,
                &[("http_proxy", "http://p")],
                "http://e.com/",
                "p:3128",
                "http_proxy",
            ),
        ];
        for (flag, vars, url, want, origin) in cases {
            let selector = ProxySelector::new(*flag, env(vars)).unwrap();
            let got = selector.select(&Url::parse(url).unwrap()).unwrap();
            assert_eq!(got.display(), *want, "{flag:?} {vars:?} {url}");
            assert_eq!(got.origin, *origin, "{flag:?} {vars:?} {url}");
        }
    }

    #[test]
    fn proxy_urls() {
        let p = ProxyEndpoint::parse("http://alice:s%3Acret@proxy.lan:8080/", "--proxy").unwrap();
        assert_eq!(p.display(), "proxy.lan:8080");
        // base64("alice:s:cret")
        assert_eq!(p.authorization.as_deref(), Some("Basic YWxpY2U6czpjcmV0"));
        let p = ProxyEndpoint::parse("127.0.0.1:3129", "--proxy").unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.authorization),
            ("127.0.0.1", 3129, None)
        );
        let p = ProxyEndpoint::parse("http://[::1]:3130", "--proxy").unwrap();
        assert_eq!(p.display(), "[::1]:3130");
        let p = ProxyEndpoint::parse("http://[::1]", "--proxy").unwrap();
        assert_eq!(p.display(), "[::1]:3128");
        let p = ProxyEndpoint::parse("http://user@h", "--proxy").unwrap();
        assert_eq!(p.authorization.as_deref(), Some("Basic dXNlcjo="));

        for bad in ["https://p:1", "socks5://p:1", "http://", "http://p:99999"] {
            let err = ProxyEndpoint::parse(bad, "--proxy").unwrap_err();
            assert!(matches!(err, ClientError::BadProxy { .. }), "{bad}: {err}");
        }
        let err = ProxyEndpoint::parse("https://u:secret@p:1", "--proxy").unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}
