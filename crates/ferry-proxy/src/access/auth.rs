//! Proxy authentication (RFC 9110 §11.7, Basic scheme): checks
//! `Proxy-Authorization` against argon2 password hashes from the config.
//!
//! Verifying argon2 is deliberately slow, so it runs on the blocking pool and a
//! successful check is remembered (keyed by a digest of the credentials, never
//! the password itself) so keep-alive traffic does not pay it per request.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use base64::Engine as _;

use crate::config::UserEntry;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    #[error("cannot hash password: {0}")]
    Hash(String),
}

/// Most remembered successful credentials before the memory is reset.
const REMEMBERED_MAX: usize = 4096;

#[derive(Debug)]
pub struct Authenticator {
    users: HashMap<String, String>,
    realm: String,
    remembered: RwLock<HashMap<[u8; 32], String>>,
}

/// The outcome of checking a request's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    Granted { user: String },
    Missing,
    Invalid,
}

impl Authenticator {
    /// `None` when no users are configured: the proxy is open to allowed clients.
    pub fn new(users: &[UserEntry], realm: &str) -> Option<Arc<Authenticator>> {
        if users.is_empty() {
            return None;
        }
        Some(Arc::new(Authenticator {
            users: users
                .iter()
                .map(|u| (u.name.clone(), u.password_hash.clone()))
                .collect(),
            realm: realm.to_string(),
            remembered: RwLock::new(HashMap::new()),
        }))
    }

    pub fn challenge(&self) -> String {
        format!(
            "Basic realm=\"{}\", charset=\"UTF-8\"",
            self.realm.replace('"', "")
        )
    }

    /// Checks a `Proxy-Authorization` header value.
    pub async fn check(self: &Arc<Self>, header: Option<&[u8]>) -> AuthOutcome {
        let Some(header) = header else {
            return AuthOutcome::Missing;
        };
        let Some((user, password)) = parse_basic(header) else {
            return AuthOutcome::Invalid;
        };
        let digest: [u8; 32] = blake3::hash(header).into();
        if let Ok(map) = self.remembered.read() {
            if let Some(name) = map.get(&digest) {
                return AuthOutcome::Granted { user: name.clone() };
            }
        }
        let Some(hash) = self.users.get(&user).cloned() else {
            return AuthOutcome::Invalid;
        };
        let ok = tokio::task::spawn_blocking(move || verify(&password, &hash))
            .await
            .unwrap_or(false);
        if !ok {
            return AuthOutcome::Invalid;
        }
        if let Ok(mut map) = self.remembered.write() {
            if map.len() >= REMEMBERED_MAX {
                map.clear();
            }
            map.insert(digest, user.clone());
        }
        AuthOutcome::Granted { user }
    }
}

fn verify(password: &str, hash: &str) -> bool {
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
        assert_eq!(auth.check(None).await, AuthOutcome::Missing);
        assert_eq!(
            auth.check(Some(&basic("alice", "nope"))).await,
            AuthOutcome::Invalid
        );
        assert_eq!(
            auth.check(Some(&basic("bob", "s3cret"))).await,
            AuthOutcome::Invalid
        );
        assert_eq!(auth.check(Some(b"Bearer xyz")).await, AuthOutcome::Invalid);
        assert_eq!(auth.check(Some(b"Basic !!!")).await, AuthOutcome::Invalid);
        for _ in 0..2 {
            // The second round is answered from the remembered digest.
            assert_eq!(
                auth.check(Some(&basic("alice", "s3cret"))).await,
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
}
