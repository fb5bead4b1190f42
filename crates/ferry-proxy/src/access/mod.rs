//! Access control as plain data and pure functions: who may use the proxy
//! (client networks, `admin_clients`), what they may reach (domain rules in
//! `acl`, network rules in `network`, checked again where connections are
//! made), why a request was refused (`refusal`), and proxy authentication
//! (`auth`). Nothing here knows the proxy's state: the request's policy
//! phases that apply these rules are in `crate::phases::policy`.

pub mod acl;
pub mod auth;
pub mod network;
pub mod refusal;

pub use acl::{AclError, Rules};
pub use auth::{AuthError, AuthOutcome, Authenticator, hash};
pub use network::{NetworkPolicy, canonical_client, is_local_client};
pub use refusal::Refusal;
