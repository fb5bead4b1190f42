//! Proxy authentication (RFC 9110 §11.7, Basic scheme): checks
//! `Proxy-Authorization` against argon2 password hashes from the config.
//!
//! Verifying argon2 is deliberately slow, so it is a shared resource kept
//! bounded: verifications run on the blocking pool, at most a few at once;
//! a client that keeps failing is made to wait before it is verified again;
//! an unknown user name is verified against a stand-in hash, so it costs
//! what a known one costs and names cannot be told apart by timing. The last
//! credentials verified for each configured user are remembered (as a
//! digest, never the password), so keep-alive traffic does not pay the
//! verification per request; the memory holds one entry per configured
//! user, so nobody can fill or flush it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use base64::Engine as _;
use tokio::sync::Semaphore;

use crate::config::UserEntry;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    #[error("cannot hash password: {0}")]
    Hash(String),
}

/// Verifications running at once (each takes tens of milliseconds and
/// about 19 MiB with argon2's default parameters).
const VERIFY_AT_ONCE: usize = 2;
/// The longest wait for a verification slot before the request is turned
/// away as busy.
const VERIFY_WAIT: Duration = Duration::from_secs(10);
/// Failures from one client before it has to wait between attempts.
const FREE_FAILURES: u32 = 5;
/// The longest wait imposed on a client that keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Clients whose failures are remembered; beyond it, expired entries are
/// dropped, and if none has expired a new failing client waits the longest.
const TRACKED_CLIENTS: usize = 16 * 1024;

#[derive(Debug)]
pub struct Authenticator {
    users: HashMap<String, String>,
    /// Verified when the user name is unknown, so that costs the same.
    stand_in: String,
    realm: String,
    /// Per configured user: the digest of the credentials last verified.
    remembered: RwLock<HashMap<String, blake3::Hash>>,
    verifying: Semaphore,
    failures: Mutex<HashMap<IpAddr, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    /// No verification for this client before then.
    not_before: Instant,
}

/// The outcome of checking a request's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    Granted {
        user: String,
    },
    Missing,
    Invalid,
    /// Refused without checking: the client failed too often lately.
    BackedOff,
    /// No verification slot came free in time.
    Busy,
}

impl Authenticator {
    /// `None` when no users are configured: the proxy is open to allowed clients.
    pub fn new(users: &[UserEntry], realm: &str) -> Option<Arc<Authenticator>> {
        if users.is_empty() {
            return None;
        }
        // A hash of a random password, made like the users' ones.
        let stand_in = hash(&blake3::hash(realm.as_bytes()).to_hex()).unwrap_or_default();
        Some(Arc::new(Authenticator {
            users: users
                .iter()
                .map(|u| (u.name.clone(), u.password_hash.clone()))
                .collect(),
            stand_in,
            realm: realm.to_string(),
            remembered: RwLock::new(HashMap::new()),
            verifying: Semaphore::new(VERIFY_AT_ONCE),
            failures: Mutex::new(HashMap::new()),
        }))
    }

    pub fn challenge(&self) -> String {
        format!(
            "Basic realm=\"{}\", charset=\"UTF-8\"",
            self.realm.replace('"', "")
        )
    }

    /// Checks a `Proxy-Authorization` header value sent by `client`.
    pub async fn check(self: &Arc<Self>, header: Option<&[u8]>, client: IpAddr) -> AuthOutcome {
        let Some(header) = header else {
            return AuthOutcome::Missing;
        };
        let Some((user, password)) = parse_basic(header) else {
            return AuthOutcome::Invalid;
        };
        let digest = blake3::hash(header);
        let remembered = self
            .remembered
            .read()
            .ok()
            .and_then(|map| map.get(&user).copied());
        // blake3::Hash compares in constant time.
        if remembered == Some(digest) {
            return AuthOutcome::Granted { user };
        }
        if self.backed_off(client) {
            return AuthOutcome::BackedOff;
        }
        let Ok(Ok(_permit)) = tokio::time::timeout(VERIFY_WAIT, self.verifying.acquire()).await
        else {
            return AuthOutcome::Busy;
        };
        let known = self.users.get(&user).cloned();
        let hash = known.clone().unwrap_or_else(|| self.stand_in.clone());
        let verified = tokio::task::spawn_blocking(move || verify(&password, &hash))
            .await
            .unwrap_or(false);
        if !(verified && known.is_some()) {
            self.failed(client);
            return AuthOutcome::Invalid;
        }
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(&client);
        }
        if let Ok(mut map) = self.remembered.write() {
            map.insert(user.clone(), digest);
        }
        AuthOutcome::Granted { user }
    }

    fn backed_off(&self, client: IpAddr) -> bool {
        self.failures
            .lock()
            .map(|f| {
                f.get(&client)
                    .is_some_and(|f| f.not_before > Instant::now())
            })
            .unwrap_or(false)
    }

    fn failed(&self, client: IpAddr) {
        let Ok(mut failures) = self.failures.lock() else {
            return;
        };
        let now = Instant::now();
        if failures.len() >= TRACKED_CLIENTS && !failures.contains_key(&client) {
            failures.retain(|_, f| f.not_before > now);
            if failures.len() >= TRACKED_CLIENTS {
                // Full of clients still backing off: this one waits longest.
                failures.insert(
                    client,
                    Failures {
                        count: u32::MAX,
                        not_before: now + MAX_BACKOFF,
                    },
                );
                return;
            }
        }
        let entry = failures.entry(client).or_insert(Failures {
            count: 0,
            not_before: now,
        });
        entry.count = entry.count.saturating_add(1);
        if entry.count >= FREE_FAILURES {
            let doublings = (entry.count - FREE_FAILURES).min(6);
            let wait = Duration::from_secs(1 << doublings).min(MAX_BACKOFF);
            entry.not_before = now + wait;
        }
    }
}

/// Verifications run, for tests of what costs a verification.
#[cfg(test)]
static VERIFICATIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn verify(password: &str, hash: &str) -> bool {
    #[cfg(test)]
    VERIFICATIONS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// `Basic base64(user:password)` → (user, password).
fn parse_basic(header: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(header).ok()?.trim();
    let (scheme, encoded) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// An argon2id PHC string for `password`, with a fresh random salt.
pub fn hash(password: &str) -> Result<String, AuthError> {
    let salt = argon2::password_hash::SaltString::generate(&mut rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, pass: &str) -> Vec<u8> {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        )
        .into_bytes()
    }

    #[tokio::test]
    async fn checks_credentials_against_argon2_hashes() {
        let users = vec![UserEntry {
            name: "alice".into(),
            password_hash: hash("s3cret").unwrap(),
        }];
        let auth = Authenticator::new(&users, "ferry").unwrap();
        let client: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(auth.check(None, client).await, AuthOutcome::Missing);
        assert_eq!(
            auth.check(Some(&basic("alice", "nope")), client).await,
            AuthOutcome::Invalid
        );
        assert_eq!(
            auth.check(Some(&basic("bob", "s3cret")), client).await,
            AuthOutcome::Invalid
        );
        assert_eq!(
            auth.check(Some(b"Bearer xyz"), client).await,
            AuthOutcome::Invalid
        );
        assert_eq!(
            auth.check(Some(b"Basic !!!"), client).await,
            AuthOutcome::Invalid
        );
        for _ in 0..2 {
            // The second round is answered from the remembered digest.
            assert_eq!(
                auth.check(Some(&basic("alice", "s3cret")), client).await,
                AuthOutcome::Granted {
                    user: "alice".into()
                }
            );
        }
        assert_eq!(auth.challenge(), "Basic realm=\"ferry\", charset=\"UTF-8\"");
    }

    #[test]
    fn no_users_means_no_authenticator() {
        assert!(Authenticator::new(&[], "ferry").is_none());
    }

    fn alice() -> Arc<Authenticator> {
        let users = vec![UserEntry {
            name: "alice".into(),
            password_hash: hash("s3cret").unwrap(),
        }];
        Authenticator::new(&users, "ferry").unwrap()
    }

    #[tokio::test]
    async fn a_client_that_keeps_failing_is_backed_off_and_others_are_not() {
        let auth = alice();
        let mallory: IpAddr = "192.0.2.66".parse().unwrap();
        let honest: IpAddr = "192.0.2.7".parse().unwrap();
        for _ in 0..FREE_FAILURES {
            assert_eq!(
                auth.check(Some(&basic("alice", "guess")), mallory).await,
                AuthOutcome::Invalid
            );
        }
        assert_eq!(
            auth.check(Some(&basic("alice", "s3cret")), mallory).await,
            AuthOutcome::BackedOff,
            "not even the right password is verified during the back-off"
        );
        assert_eq!(
            auth.check(Some(&basic("alice", "s3cret")), honest).await,
            AuthOutcome::Granted {
                user: "alice".into()
            }
        );
    }

    #[tokio::test]
    async fn remembered_credentials_are_one_per_configured_user() {
        let auth = alice();
        let client: IpAddr = "127.0.0.1".parse().unwrap();
        for name in ["bob", "carol", "dave"] {
            auth.check(Some(&basic(name, "x")), client).await;
        }
        auth.check(Some(&basic("alice", "s3cret")), client).await;
        let remembered = auth.remembered.read().unwrap();
        assert_eq!(remembered.len(), 1);
        assert!(remembered.contains_key("alice"));
    }

    #[tokio::test]
    async fn an_unknown_user_is_verified_like_a_known_one() {
        use std::sync::atomic::Ordering::SeqCst;
        let auth = alice();
        let client: IpAddr = "192.0.2.9".parse().unwrap();
        let before = VERIFICATIONS.load(SeqCst);
        assert_eq!(
            auth.check(Some(&basic("nobody", "x")), client).await,
            AuthOutcome::Invalid
        );
        assert!(
            VERIFICATIONS.load(SeqCst) > before,
            "an unknown name must cost an argon2 verification too"
        );
    }
}
