//! The HTTP caching rules (RFC 9111), as plain functions over headers.
//!
//! The rules are written here rather than taken from the `http-cache-semantics`
//! crate, which this module used to build on: it reads directive names case-
//! sensitively, ignores an invalid `Age`, parses dates only in RFC 2822 form,
//! stores only a fixed list of status codes (no 5xx, even with explicit
//! freshness), gives a shared cache no freshness at all under
//! `proxy-revalidate`, and compares only the first line of a `Vary`-nominated
//! header. Each of those is an RFC 9111 rule, pinned by a test beside it.
//!
//! Beyond RFC 9111 itself, as a shared cache:
//! - a cap on heuristic freshness (§4.2.2 leaves the limit to the cache),
//! - `stale-while-revalidate` and `stale-if-error` (RFC 5861), never with
//!   `must-revalidate`/`proxy-revalidate`/`s-maxage`/`no-cache` (§4.2.4),
//! - HEAD answered from a stored GET,
//! - responses with `Set-Cookie` stored only when marked `public`, and the
//!   per-user headers never stored at all (privacy over hit ratio),
//! - no partial content stored, and nothing stored that could never be reused.
//!
//! Each part has a file: the request as the rules see it (`request`),
//! `Cache-Control` (`directives`), `Age` (`age`), storability (§3; its
//! reasons in `not_stored`), freshness (§4.2), revalidation (§4.3) and the
//! per-user headers (`per_user`), and what an operator's cache rule may
//! change about freshness (`rules`); this file only re-exports them, so none of
//! them imports it. The response a hit gives is
//! built in `crate::conditional` (RFC 9110): `Age`, the origin's `Date` kept
//! (the crate would replace it with an RFC 2822 date, which is not an HTTP
//! date), and the client's own conditional and range requests.

mod age;
mod directives;
pub(crate) mod freshness;
mod not_stored;
mod per_user;
mod request;
mod revalidation;
mod rules;
mod storable;
#[cfg(test)]
pub(crate) mod test_support;

pub use age::{MAX_AGE_SECS, age_header, current_age, with_bounded_age};
pub use directives::{Directives, directives};
pub use freshness::{
    STALE_IF_UNREACHABLE_MAX, StaleRules, Stored, Verdict, evaluate, freshness_lifetime,
    heuristically_cacheable,
};
pub use not_stored::NotStored;
pub use per_user::{PER_USER_HEADERS, is_per_user, without_per_user};
pub use request::{canonical_request, stored_request};
pub use revalidation::{merge_not_modified, validators};
pub use rules::{FreshnessRule, IMMUTABLE_LIFETIME};
pub use storable::{check_storable, post_response_reusable, response_forbids_storing};
