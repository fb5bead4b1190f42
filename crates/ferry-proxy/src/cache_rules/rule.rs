//! One operator cache rule: which requests it is for (a host pattern as in
//! the access lists, a path pattern, and optionally words the request's
//! `Accept` or `User-Agent` must contain), what it does to freshness (a
//! [`FreshnessRule`] the cache applies), and what it does to the cache key
//! (the query, or some of its parameters, left out: a signed download URL
//! carries a new signature each time).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use ferry_cache::FreshnessRule;
use http::{HeaderMap, Uri, header};

use super::glob::PathGlob;
use crate::config::CacheRuleConfig;
use crate::host::normalize_host;

/// A host pattern: `example.com` is it and its subdomains, `*.example.com`
/// only its subdomains (the access lists' rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    name: String,
    subdomains_only: bool,
}

impl HostPattern {
    pub fn new(pattern: &str) -> Result<HostPattern, String> {
        let p = normalize_host(pattern);
        let (subdomains_only, name) = match p.strip_prefix("*.") {
            Some(rest) => (true, rest.to_string()),
            None => (false, p),
        };
        if !crate::host::is_host_or_address(&name) {
            return Err(format!("host pattern {pattern:?} is not a host name"));
        }
        Ok(HostPattern {
            name,
            subdomains_only,
        })
    }

    pub fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').as_bytes();
        let name = self.name.as_bytes();
        let under = host.len() > name.len() + 1
            && host[host.len() - name.len() - 1] == b'.'
            && host[host.len() - name.len()..].eq_ignore_ascii_case(name);
        under || (!self.subdomains_only && host.eq_ignore_ascii_case(name))
    }
}

/// What a rule does to the cache key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum KeyQuery {
    /// The URL as it is.
    #[default]
    Keep,
    /// Without its query.
    Ignore,
    /// Without these query parameters (compared without regard to case).
    Drop(Vec<String>),
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct CacheRule {
    pub name: Arc<str>,
    host: Option<HostPattern>,
    path: Option<PathGlob>,
    accept: Option<String>,
    user_agent: Option<String>,
    pub freshness: FreshnessRule,
    pub key_query: KeyQuery,
}

impl CacheRule {
    /// Checks and compiles `config`.
    pub fn new(config: &CacheRuleConfig) -> Result<CacheRule, String> {
        let name = config.name.trim();
        let name_ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
        if !name_ok {
            return Err(format!(
                "cache rule name {:?} must be 1 to 64 letters, digits, '-', '.', '_'",
                config.name
            ));
        }
        let at = |e: String| format!("cache rule {name}: {e}");
        if config.host.is_none() && config.path.is_none() {
            return Err(at("give a host or a path pattern (or both)".into()));
        }
        let host = config
            .host
            .as_deref()
            .map(HostPattern::new)
            .transpose()
            .map_err(at)?;
        let path = config
            .path
            .as_deref()
            .map(PathGlob::new)
            .transpose()
            .map_err(at)?;
        let duration = |field: &str, value: &Option<String>| -> Result<Option<Duration>, String> {
            value
                .as_deref()
                .map(|v| parse_duration(v).map_err(|e| at(format!("{field}: {e}"))))
                .transpose()
        };
        let freshness = FreshnessRule {
            name: name.into(),
            fresh: duration("fresh", &config.fresh)?,
            min_fresh: duration("min_fresh", &config.min_fresh)?,
            max_fresh: duration("max_fresh", &config.max_fresh)?,
            immutable: config.immutable,
            ignore_reload: config.ignore_reload,
        };
        if let (Some(min), Some(max)) = (freshness.min_fresh, freshness.max_fresh) {
            if min > max {
                return Err(at("min_fresh is above max_fresh".into()));
            }
        }
        let key_query = match (config.ignore_query, config.drop_query.is_empty()) {
            (true, true) => KeyQuery::Ignore,
            (true, false) => return Err(at("ignore_query and drop_query: give one".into())),
            (false, true) => KeyQuery::Keep,
            (false, false) => KeyQuery::Drop(config.drop_query.clone()),
        };
        let words = |w: &Option<String>| w.as_deref().map(str::to_ascii_lowercase);
        Ok(CacheRule {
            name: name.into(),
            host,
            path,
            accept: words(&config.accept),
            user_agent: words(&config.user_agent),
            freshness,
            key_query,
        })
    }

    /// Whether the rule is for a request to `host` for `path` with `headers`.
    pub fn matches(&self, host: &str, path: &str, headers: &HeaderMap) -> bool {
        let contains = |name: header::HeaderName, words: &Option<String>| {
            words.as_ref().is_none_or(|words| {
                headers.get(name).is_some_and(|v| {
                    words
                        .split('|')
                        .any(|w| contains_ignoring_case(v.as_bytes(), w.as_bytes()))
                })
            })
        };
        self.host.as_ref().is_none_or(|h| h.matches(host))
            && self.path.as_ref().is_none_or(|p| p.matches(path))
            && contains(header::ACCEPT, &self.accept)
            && contains(header::USER_AGENT, &self.user_agent)
    }

    /// Whether the rule's host and path patterns match (its words for the
    /// client's headers aside).
    pub fn matches_url(&self, host: &str, path: &str) -> bool {
        self.host.as_ref().is_none_or(|h| h.matches(host))
            && self.path.as_ref().is_none_or(|p| p.matches(path))
    }

    /// What the rule does, in a few words (for the cache browser).
    pub fn summary(&self) -> String {
        let f = &self.freshness;
        let mut parts = Vec::new();
        if f.immutable {
            parts.push("immutable".to_string());
        }
        let human = |d: Duration| humantime::format_duration(d).to_string();
        if f.ignore_reload && !f.immutable {
            parts.push("answered on reload".to_string());
        }
        if let Some(d) = f.fresh {
            parts.push(format!("fresh {} when the origin says nothing", human(d)));
        }
        if let Some(d) = f.min_fresh {
            parts.push(format!("at least {}", human(d)));
        }
        if let Some(d) = f.max_fresh {
            parts.push(format!("at most {}", human(d)));
        }
        match &self.key_query {
            KeyQuery::Keep => {}
            KeyQuery::Ignore => parts.push("keyed without its query".into()),
            KeyQuery::Drop(names) => parts.push(format!("keyed without {}", names.join(", "))),
        }
        parts.join(", ")
    }

    /// The URI the cache keys this request under.
    pub fn key_uri<'a>(&self, uri: &'a Uri) -> Cow<'a, Uri> {
        let Some(query) = uri.query() else {
            return Cow::Borrowed(uri);
        };
        let kept = match &self.key_query {
            KeyQuery::Keep => return Cow::Borrowed(uri),
            KeyQuery::Ignore => String::new(),
            KeyQuery::Drop(names) => query
                .split('&')
                .filter(|pair| {
                    let name = pair.split('=').next().unwrap_or("");
                    !names.iter().any(|n| n.eq_ignore_ascii_case(name))
                })
                .collect::<Vec<_>>()
                .join("&"),
        };
        let path_and_query = if kept.is_empty() {
            uri.path().to_string()
        } else {
            format!("{}?{kept}", uri.path())
        };
        let mut parts = uri.clone().into_parts();
        match path_and_query.parse() {
            Ok(pq) => parts.path_and_query = Some(pq),
            Err(_) => return Cow::Borrowed(uri),
        }
        Uri::from_parts(parts).map_or(Cow::Borrowed(uri), Cow::Owned)
    }
}

/// Whether `haystack` holds `needle` (already lower case), in any case;
/// without allocating, since it runs on request headers.
fn contains_ignoring_case(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

/// `90s`, `10m`, `1h`, `7d`, `1y` (and combinations such as `1h 30m`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration ({e}); write e.g. 90s, 10m, 1h, 7d"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(f: impl FnOnce(&mut CacheRuleConfig)) -> CacheRule {
        let mut config = CacheRuleConfig {
            name: "r".into(),
            path: Some("/**".into()),
            ..Default::default()
        };
        f(&mut config);
        CacheRule::new(&config).unwrap()
    }

    #[test]
    fn hosts_match_as_in_the_access_lists() {
        let r = rule(|c| c.host = Some("Example.com".into()));
        let none = HeaderMap::new();
        for (host, want) in [
            ("example.com", true),
            ("a.example.com", true),
            ("EXAMPLE.COM.", true),
            ("badexample.com", false),
            ("example.com.evil.test", false),
        ] {
            assert_eq!(r.matches(host, "/x", &none), want, "{host}");
        }
        let subs = rule(|c| c.host = Some("*.example.com".into()));
        assert!(subs.matches("a.example.com", "/x", &none));
        assert!(!subs.matches("example.com", "/x", &none));
    }

    #[test]
    fn header_words_narrow_a_rule() {
        let r = rule(|c| c.accept = Some("application/vnd.npm.install-v1+json".into()));
        let mut h = HeaderMap::new();
        assert!(!r.matches("r.test", "/x", &h));
        h.insert(
            header::ACCEPT,
            "application/vnd.npm.install-v1+json; q=1.0, */*"
                .parse()
                .unwrap(),
        );
        assert!(r.matches("r.test", "/x", &h));
    }

    #[test]
    fn the_key_leaves_out_what_the_rule_says() {
        let uri: Uri = "https://cdn.test/blob?X-Amz-Signature=abc&part=2&x-amz-date=1"
            .parse()
            .unwrap();
        let keep = rule(|_| {});
        assert_eq!(keep.key_uri(&uri).as_ref(), &uri);
        let ignore = rule(|c| c.ignore_query = true);
        assert_eq!(ignore.key_uri(&uri).to_string(), "https://cdn.test/blob");
        let drop = rule(|c| c.drop_query = vec!["x-amz-signature".into(), "X-Amz-Date".into()]);
        assert_eq!(
            drop.key_uri(&uri).to_string(),
            "https://cdn.test/blob?part=2"
        );
    }

    #[test]
    fn bad_rules_say_what_is_wrong() {
        let bad = |f: fn(&mut CacheRuleConfig)| {
            let mut config = CacheRuleConfig {
                name: "r".into(),
                path: Some("/x".into()),
                ..Default::default()
            };
            f(&mut config);
            CacheRule::new(&config).unwrap_err()
        };
        assert!(bad(|c| c.name = "bad name".into()).contains("name"));
        assert!(bad(|c| c.path = None).contains("host or a path"));
        assert!(bad(|c| c.fresh = Some("soon".into())).contains("fresh"));
        assert!(bad(|c| c.path = Some("x".into())).contains("must start"));
        assert!(bad(|c| c.host = Some("*.".into())).contains("host"));
        assert!(
            bad(|c| {
                c.min_fresh = Some("2h".into());
                c.max_fresh = Some("1h".into());
            })
            .contains("min_fresh")
        );
        assert_eq!(parse_duration("1h 30m").unwrap(), Duration::from_secs(5400));
    }
}
