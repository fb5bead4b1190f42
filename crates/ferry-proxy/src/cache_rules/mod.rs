//! Operator cache rules and the presets that know the package ecosystems:
//! which rule a request is for (`rule`: host pattern, path pattern in the
//! `glob` dialect, the client's words), what the rule does to freshness and
//! to the cache key, and the preset rules (`presets`). The first rule that
//! matches decides; the operator's own rules come before the presets'.
//! Rules are plain data: the cache applies their freshness
//! (`ferry_cache::FreshnessRule`), the caching phase asks which one applies.

pub mod glob;
pub mod presets;
pub mod rule;

use http::HeaderMap;

use crate::config::ProxyConfig;
pub use rule::CacheRule;

/// Every rule in force, in the order they are tried.
#[derive(Debug, Clone, Default)]
pub struct CacheRules {
    rules: Vec<CacheRule>,
}

impl CacheRules {
    /// The operator's `cache_rules`, then the `cache_presets`' rules.
    pub fn build(config: &ProxyConfig) -> Result<CacheRules, String> {
        let mut rules = config
            .cache_rules
            .iter()
            .map(CacheRule::new)
            .collect::<Result<Vec<_>, _>>()?;
        rules.extend(presets::rules(
            &config.cache_presets,
            &config.preset_index_fresh,
        )?);
        Ok(CacheRules { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// The first rule whose host and path patterns match a URL, whatever
    /// words it wants from a client's request (for what is already stored).
    pub fn find_for_url(&self, host: &str, path: &str) -> Option<&CacheRule> {
        self.rules.iter().find(|r| r.matches_url(host, path))
    }

    /// The rule for a request to `host` for `path` with `headers`.
    pub fn find(&self, host: &str, path: &str, headers: &HeaderMap) -> Option<&CacheRule> {
        self.rules.iter().find(|r| r.matches(host, path, headers))
    }
}
