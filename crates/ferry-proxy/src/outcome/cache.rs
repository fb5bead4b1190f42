//! What the cache did for one request, as one value. `Cache-Status` (RFC
//! 9211), `X-Cache`, the access log's cache field and the metric label are
//! all derived from it here, so they can never disagree.

use ferry_cache::{MissKind, NotStored};
use http::HeaderValue;
use http::header::HeaderName;

pub const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");
pub const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// The cache's part in one exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CacheOutcome {
    /// The cache took no part: the proxy runs without one, or the request
    /// was for the proxy's own pages, a tunnel, or a purge.
    #[default]
    NotConsulted,
    /// Refused by the access rules before the cache was asked.
    Refused,
    /// Answered from a fresh stored response; `ttl` seconds of freshness left.
    Hit { ttl: i64 },
    /// Waited for another request's fetch of the same object (collapsed
    /// forwarding) and was answered from what it stored.
    Collapsed { ttl: i64 },
    /// The origin confirmed the stale stored response (304); it was served.
    Revalidated,
    /// A stale stored response was served, as the response's directives allow.
    Stale { ttl: i64, served: StaleServed },
    /// Fetched from the origin and stored while relayed.
    Stored { fwd: Fwd, fwd_status: u16 },
    /// Fetched from the origin and not stored.
    NotStored {
        fwd: Fwd,
        fwd_status: u16,
        reason: NotStored,
    },
    /// The origin gave no usable response; the client got an error page.
    FetchFailed { fwd: Fwd },
    /// Not a request the cache answers: forwarded as it came.
    Bypass(BypassReason),
    /// `only-if-cached` and nothing usable stored (RFC 9111 §5.2.1.7).
    OnlyIfCachedMiss,
}

/// Why a stale response was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaleServed {
    /// `stale-while-revalidate`: a background refresh runs (RFC 5861 §3).
    WhileRevalidate,
    /// `stale-if-error`: revalidation failed, with the origin's status if
    /// it answered at all (RFC 5861 §4).
    IfError { fwd_status: Option<u16> },
}

/// Why the cache stood aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BypassReason {
    /// A method the cache does not answer (POST, PUT, ...).
    Method,
    /// A GET or HEAD that carries a body.
    RequestBody,
}

/// Why the request went forward to the origin (RFC 9211 `fwd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fwd {
    /// Nothing stored for the URI.
    UriMiss,
    /// Stored responses, none for this request's `Vary` header values.
    VaryMiss,
    /// A stored response needed revalidation.
    Stale,
    /// Part of the response is stored, not the part asked for.
    Partial,
    /// The request cannot be answered from the cache at all.
    Bypass,
}

impl Fwd {
    pub fn as_str(self) -> &'static str {
        match self {
            Fwd::UriMiss => "uri-miss",
            Fwd::VaryMiss => "vary-miss",
            Fwd::Stale => "stale",
            Fwd::Partial => "partial",
            Fwd::Bypass => "bypass",
        }
    }
}

impl From<MissKind> for Fwd {
    fn from(kind: MissKind) -> Fwd {
        match kind {
            MissKind::UriMiss => Fwd::UriMiss,
            MissKind::VaryMiss => Fwd::VaryMiss,
            MissKind::Partial => Fwd::Partial,
        }
    }
}

/// The coarse class of an outcome: the metric label and the dashboard's
/// chart series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeClass {
    None,
    Refused,
    Hit,
    Collapsed,
    Revalidated,
    Stale,
    Miss,
    Uncacheable,
    Error,
    Bypass,
}

impl OutcomeClass {
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeClass::None => "none",
            OutcomeClass::Refused => "refused",
            OutcomeClass::Hit => "hit",
            OutcomeClass::Collapsed => "collapsed",
            OutcomeClass::Revalidated => "revalidated",
            OutcomeClass::Stale => "stale",
            OutcomeClass::Miss => "miss",
            OutcomeClass::Uncacheable => "uncacheable",
            OutcomeClass::Error => "error",
            OutcomeClass::Bypass => "bypass",
        }
    }
}

impl CacheOutcome {
    pub fn class(self) -> OutcomeClass {
        match self {
            CacheOutcome::NotConsulted => OutcomeClass::None,
            CacheOutcome::Refused => OutcomeClass::Refused,
            CacheOutcome::Hit { .. } => OutcomeClass::Hit,
            CacheOutcome::Collapsed { .. } => OutcomeClass::Collapsed,
            CacheOutcome::Revalidated => OutcomeClass::Revalidated,
            CacheOutcome::Stale { .. } => OutcomeClass::Stale,
            CacheOutcome::Stored { .. } => OutcomeClass::Miss,
            CacheOutcome::NotStored { .. } => OutcomeClass::Uncacheable,
            CacheOutcome::FetchFailed { .. } | CacheOutcome::OnlyIfCachedMiss => {
                OutcomeClass::Error
            }
            CacheOutcome::Bypass(_) => OutcomeClass::Bypass,
        }
    }

    /// Whether the cache had anything to say: without it, no `Cache-Status`
    /// or `X-Cache` is sent and the log shows `-`.
    fn is_reported(self) -> bool {
        !matches!(self, CacheOutcome::NotConsulted | CacheOutcome::Refused)
    }

    /// Whether the body came from the cache (fresh, revalidated or stale).
    pub fn served_from_cache(self) -> bool {
        matches!(
            self,
            CacheOutcome::Hit { .. }
                | CacheOutcome::Collapsed { .. }
                | CacheOutcome::Revalidated
                | CacheOutcome::Stale { .. }
        )
    }

    /// `X-Cache` and the access log's cache field: `HIT`, `MISS`, or `-`
    /// when the cache took no part.
    pub fn log_token(self) -> &'static str {
        match (self.is_reported(), self.served_from_cache()) {
            (false, _) => "-",
            (true, true) => "HIT",
            (true, false) => "MISS",
        }
    }

    /// The RFC 9211 `Cache-Status` value, `None` when the cache took no part.
    /// `cache_name` is this proxy's name (`via_pseudonym`), so that in a farm
    /// the entry says which node answered; `rule` is the operator's cache
    /// rule that decided the freshness, named as the detail
    /// (`detail=rule:NAME`) unless the outcome has a detail of its own.
    pub fn cache_status(self, cache_name: &str, rule: Option<&str>) -> Option<String> {
        let mut s = CacheStatus::new(cache_name);
        match self {
            CacheOutcome::NotConsulted | CacheOutcome::Refused => return None,
            CacheOutcome::Hit { ttl } => s.hit().ttl(ttl),
            CacheOutcome::Collapsed { ttl } => s.hit().ttl(ttl).detail("collapsed"),
            CacheOutcome::Stale {
                ttl,
                served: StaleServed::WhileRevalidate,
            } => s.hit().ttl(ttl).detail("stale-while-revalidate"),
            CacheOutcome::Stale {
                ttl,
                served: StaleServed::IfError { fwd_status },
            } => {
                s.fwd(Fwd::Stale);
                if let Some(code) = fwd_status {
                    s.fwd_status(code);
                }
                s.ttl(ttl).detail("stale-if-error")
            }
            CacheOutcome::Revalidated => s.fwd(Fwd::Stale).fwd_status(304),
            // A plain miss that was stored reads best without the status.
            CacheOutcome::Stored {
                fwd: Fwd::Stale,
                fwd_status,
            } => s.fwd(Fwd::Stale).fwd_status(fwd_status).stored(),
            CacheOutcome::Stored { fwd, .. } => s.fwd(fwd).stored(),
            CacheOutcome::NotStored {
                fwd,
                fwd_status,
                reason,
            } => s.fwd(fwd).fwd_status(fwd_status).detail(reason.as_str()),
            CacheOutcome::FetchFailed { fwd } => s.fwd(fwd),
            CacheOutcome::Bypass(BypassReason::Method) => s.fwd_text("method"),
            CacheOutcome::Bypass(BypassReason::RequestBody) => {
                s.fwd(Fwd::Bypass).detail("request-body")
            }
            CacheOutcome::OnlyIfCachedMiss => s.detail("only-if-cached"),
        };
        if let Some(rule) = rule.filter(|_| !s.1) {
            s.0.push_str("; detail=rule:");
            s.0.push_str(rule);
        }
        Some(s.0)
    }

    /// Adds `Cache-Status` and `X-Cache` to a response's headers, if the
    /// cache took part. Entries of caches nearer the origin stay in front of
    /// ours (RFC 9211 §2: the list grows towards the client).
    pub fn apply(self, headers: &mut http::HeaderMap, cache_name: &str, rule: Option<&str>) {
        let Some(mut value) = self.cache_status(cache_name, rule) else {
            return;
        };
        if let Some(upstream) = headers.get(CACHE_STATUS).and_then(|v| v.to_str().ok()) {
            value = format!("{upstream}, {value}");
        }
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(CACHE_STATUS, v);
        }
        headers.insert(X_CACHE, HeaderValue::from_static(self.log_token()));
    }
}

/// Builds a `Cache-Status` value in one allocation (this runs per response).
struct CacheStatus(String, bool);

impl CacheStatus {
    fn new(cache_name: &str) -> Self {
        let mut s = String::with_capacity(64);
        s.push_str(cache_name);
        CacheStatus(s, false)
    }
    fn hit(&mut self) -> &mut Self {
        self.0.push_str("; hit");
        self
    }
    fn fwd(&mut self, fwd: Fwd) -> &mut Self {
        self.fwd_text(fwd.as_str())
    }
    fn fwd_text(&mut self, fwd: &str) -> &mut Self {
        self.0.push_str("; fwd=");
        self.0.push_str(fwd);
        self
    }
    fn fwd_status(&mut self, code: u16) -> &mut Self {
        self.0.push_str("; fwd-status=");
        self.0.push_str(itoa::Buffer::new().format(code));
        self
    }
    fn stored(&mut self) -> &mut Self {
        self.0.push_str("; stored");
        self
    }
    fn ttl(&mut self, ttl: i64) -> &mut Self {
        self.0.push_str("; ttl=");
        self.0.push_str(itoa::Buffer::new().format(ttl));
        self
    }
    fn detail(&mut self, detail: &str) -> &mut Self {
        self.0.push_str("; detail=");
        self.0.push_str(detail);
        self.1 = true;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_renders_one_consistent_set_of_fields() {
        use CacheOutcome as O;
        let cases: &[(CacheOutcome, Option<&str>, &str, &str)] = &[
            (O::NotConsulted, None, "-", "none"),
            (O::Refused, None, "-", "refused"),
            (O::Hit { ttl: 60 }, Some("ferry; hit; ttl=60"), "HIT", "hit"),
            (
                O::Collapsed { ttl: 5 },
                Some("ferry; hit; ttl=5; detail=collapsed"),
                "HIT",
                "collapsed",
            ),
            (
                O::Revalidated,
                Some("ferry; fwd=stale; fwd-status=304"),
                "HIT",
                "revalidated",
            ),
            (
                O::Stale {
                    ttl: -3,
                    served: StaleServed::WhileRevalidate,
                },
                Some("ferry; hit; ttl=-3; detail=stale-while-revalidate"),
                "HIT",
                "stale",
            ),
            (
                O::Stale {
                    ttl: -3,
                    served: StaleServed::IfError {
                        fwd_status: Some(500),
                    },
                },
                Some("ferry; fwd=stale; fwd-status=500; ttl=-3; detail=stale-if-error"),
                "HIT",
                "stale",
            ),
            (
                O::Stale {
                    ttl: -3,
                    served: StaleServed::IfError { fwd_status: None },
                },
                Some("ferry; fwd=stale; ttl=-3; detail=stale-if-error"),
                "HIT",
                "stale",
            ),
            (
                O::Stored {
                    fwd: Fwd::UriMiss,
                    fwd_status: 200,
                },
                Some("ferry; fwd=uri-miss; stored"),
                "MISS",
                "miss",
            ),
            (
                O::Stored {
                    fwd: Fwd::Stale,
                    fwd_status: 200,
                },
                Some("ferry; fwd=stale; fwd-status=200; stored"),
                "MISS",
                "miss",
            ),
            (
                O::NotStored {
                    fwd: Fwd::UriMiss,
                    fwd_status: 404,
                    reason: NotStored::NotReusable,
                },
                Some("ferry; fwd=uri-miss; fwd-status=404; detail=not-reusable"),
                "MISS",
                "uncacheable",
            ),
            (
                O::FetchFailed { fwd: Fwd::VaryMiss },
                Some("ferry; fwd=vary-miss"),
                "MISS",
                "error",
            ),
            (
                O::Bypass(BypassReason::Method),
                Some("ferry; fwd=method"),
                "MISS",
                "bypass",
            ),
            (
                O::Bypass(BypassReason::RequestBody),
                Some("ferry; fwd=bypass; detail=request-body"),
                "MISS",
                "bypass",
            ),
            (
                O::OnlyIfCachedMiss,
                Some("ferry; detail=only-if-cached"),
                "MISS",
                "error",
            ),
        ];
        for (outcome, status, token, class) in cases {
            assert_eq!(
                outcome.cache_status("ferry", None).as_deref(),
                *status,
                "{outcome:?}"
            );
            assert_eq!(outcome.log_token(), *token, "{outcome:?}");
            assert_eq!(outcome.class().as_str(), *class, "{outcome:?}");
            let mut headers = http::HeaderMap::new();
            outcome.apply(&mut headers, "ferry", None);
            assert_eq!(
                headers.get(X_CACHE).map(|v| v.to_str().unwrap()),
                status.map(|_| *token),
                "{outcome:?}"
            );
        }
    }
}
