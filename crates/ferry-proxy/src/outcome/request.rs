//! What one request came to, as a whole: where it was routed, the class the
//! metrics and the dashboard count it in, and where its body's bytes came
//! from.

use super::cache::CacheOutcome;
use super::failure::Failure;

/// Where a request was routed: the proxy's own pages, a tunnel, or an origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequestKind {
    Own,
    Tunnel,
    #[default]
    Origin,
}

/// What one request came to, as the metrics' `outcome` label and the
/// dashboard's series: the cache outcome, refined by the route and by a
/// failure's kind (a refusal is `Blocked`, whatever the cache did).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    FreshHit,
    Collapsed,
    Revalidated,
    Stale,
    Miss,
    Uncacheable,
    Bypass,
    Blocked,
    Error,
    Tunnel,
    OwnPage,
}

impl RequestOutcome {
    pub const ALL: [RequestOutcome; 11] = [
        RequestOutcome::FreshHit,
        RequestOutcome::Collapsed,
        RequestOutcome::Revalidated,
        RequestOutcome::Stale,
        RequestOutcome::Miss,
        RequestOutcome::Uncacheable,
        RequestOutcome::Bypass,
        RequestOutcome::Blocked,
        RequestOutcome::Error,
        RequestOutcome::Tunnel,
        RequestOutcome::OwnPage,
    ];

    pub fn of(kind: RequestKind, cache: CacheOutcome, failure: Option<Failure>) -> RequestOutcome {
        match (kind, cache, failure) {
            (_, _, Some(Failure::Policy(_))) | (_, CacheOutcome::Refused, _) => {
                RequestOutcome::Blocked
            }
            (RequestKind::Own, _, _) => RequestOutcome::OwnPage,
            (_, _, Some(_)) => RequestOutcome::Error,
            (RequestKind::Tunnel, _, None) => RequestOutcome::Tunnel,
            (RequestKind::Origin, cache, None) => match cache {
                CacheOutcome::Hit { .. } => RequestOutcome::FreshHit,
                CacheOutcome::Collapsed { .. } => RequestOutcome::Collapsed,
                CacheOutcome::Revalidated => RequestOutcome::Revalidated,
                CacheOutcome::Stale { .. } => RequestOutcome::Stale,
                CacheOutcome::Stored { .. } => RequestOutcome::Miss,
                CacheOutcome::NotStored { .. } => RequestOutcome::Uncacheable,
                CacheOutcome::FetchFailed { .. } | CacheOutcome::OnlyIfCachedMiss => {
                    RequestOutcome::Error
                }
                CacheOutcome::Bypass(_) | CacheOutcome::NotConsulted | CacheOutcome::Refused => {
                    RequestOutcome::Bypass
                }
            },
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RequestOutcome::FreshHit => "fresh_hit",
            RequestOutcome::Collapsed => "collapsed",
            RequestOutcome::Revalidated => "revalidated",
            RequestOutcome::Stale => "stale",
            RequestOutcome::Miss => "miss",
            RequestOutcome::Uncacheable => "uncacheable",
            RequestOutcome::Bypass => "bypass",
            RequestOutcome::Blocked => "blocked",
            RequestOutcome::Error => "error",
            RequestOutcome::Tunnel => "tunnel",
            RequestOutcome::OwnPage => "own_page",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether the body came from the cache (the request hit ratio's numerator).
    pub fn is_from_cache(self) -> bool {
        matches!(
            self,
            RequestOutcome::FreshHit
                | RequestOutcome::Collapsed
                | RequestOutcome::Revalidated
                | RequestOutcome::Stale
        )
    }

    /// Where the response body's bytes came from, for the byte hit ratio:
    /// `None` for the proxy's own pages, tunnels and error pages.
    pub fn byte_source(self) -> Option<ByteSource> {
        match self {
            o if o.is_from_cache() => Some(ByteSource::Cache),
            RequestOutcome::Miss | RequestOutcome::Uncacheable | RequestOutcome::Bypass => {
                Some(ByteSource::Origin)
            }
            _ => None,
        }
    }
}

/// Where a response body came from (`ferry_response_bytes_total{source}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteSource {
    Cache,
    Origin,
}

impl ByteSource {
    pub const ALL: [ByteSource; 2] = [ByteSource::Cache, ByteSource::Origin];

    pub fn as_str(self) -> &'static str {
        match self {
            ByteSource::Cache => "cache",
            ByteSource::Origin => "origin",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_outcomes_refine_the_cache_outcome_by_route_and_failure() {
        use crate::outcome::failure::{RuleKind, UpstreamCause};
        let hit = CacheOutcome::Hit { ttl: 5 };
        let of = RequestOutcome::of;
        assert_eq!(of(RequestKind::Origin, hit, None), RequestOutcome::FreshHit);
        assert_eq!(
            of(RequestKind::Origin, CacheOutcome::NotConsulted, None),
            RequestOutcome::Bypass
        );
        assert_eq!(
            of(
                RequestKind::Origin,
                CacheOutcome::Refused,
                Some(Failure::Policy(RuleKind::Domain))
            ),
            RequestOutcome::Blocked
        );
        assert_eq!(
            of(
                RequestKind::Tunnel,
                CacheOutcome::NotConsulted,
                Some(Failure::Policy(RuleKind::Port))
            ),
            RequestOutcome::Blocked
        );
        assert_eq!(
            of(
                RequestKind::Tunnel,
                CacheOutcome::NotConsulted,
                Some(Failure::Upstream(UpstreamCause::Dns))
            ),
            RequestOutcome::Error
        );
        assert_eq!(
            of(RequestKind::Tunnel, CacheOutcome::NotConsulted, None),
            RequestOutcome::Tunnel
        );
        assert_eq!(
            of(
                RequestKind::Own,
                CacheOutcome::NotConsulted,
                Some(Failure::Request)
            ),
            RequestOutcome::OwnPage
        );
        assert_eq!(
            RequestOutcome::FreshHit.byte_source(),
            Some(ByteSource::Cache)
        );
        assert_eq!(RequestOutcome::Miss.byte_source(), Some(ByteSource::Origin));
        assert_eq!(RequestOutcome::Tunnel.byte_source(), None);
        for (i, o) in RequestOutcome::ALL.iter().enumerate() {
            assert_eq!(o.index(), i);
        }
    }
}
