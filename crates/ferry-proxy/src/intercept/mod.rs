//! TLS interception's own parts, without the proxy's state: the local
//! certificate authority users install (`ca`), the leaves minted from it for
//! each site (`mint`), and the client-and-site pairs whose tunnels pass
//! through because the client keeps refusing the proxy's certificate
//! (`passthrough`). Off unless asked for; the phase that terminates an
//! intercepted tunnel's TLS is `crate::phases::intercepted`.

pub mod ca;
pub mod mint;
pub mod passthrough;

pub use mint::MintError;

/// What the proxy needs to intercept: the leaves, and the client-and-site
/// pairs currently passed through.
pub struct Interception {
    pub minter: mint::Minter,
    pub passthrough: passthrough::AutoPassthrough,
}
