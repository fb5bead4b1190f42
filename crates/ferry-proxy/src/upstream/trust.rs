//! Which certificate authorities upstream TLS trusts. By default the
//! operating system's store, as curl, apt, pip and browsers do: networks
//! that inspect TLS (schools, companies) install their CA there, and a proxy
//! that trusted only its own list would fail every HTTPS fetch on them.
//! `--upstream-roots bundled` trusts the Mozilla roots compiled in instead,
//! `none` nothing but the `--upstream-ca` files, which add to either.

use std::path::{Path, PathBuf};

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;

use crate::config::UpstreamRoots;

/// Why the upstream TLS settings could not be built (at startup).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    #[error("cannot load upstream CA file {path}: {detail}")]
    CaFile { path: PathBuf, detail: String },
    #[error("cannot set up TLS: {0}")]
    Protocols(String),
    #[error(
        "upstream TLS would trust no certificate authority (--upstream-roots none and no --upstream-ca)"
    )]
    NoRoots,
}

/// The client TLS settings for upstream connections.
pub fn tls_config(
    roots: UpstreamRoots,
    extra_ca: &[PathBuf],
) -> Result<rustls::ClientConfig, TlsSetupError> {
    let roots = root_store(roots, extra_ca)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsSetupError::Protocols(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// The root store for upstream TLS: `roots`, then each `extra_ca` file.
pub fn root_store(
    roots: UpstreamRoots,
    extra_ca: &[PathBuf],
) -> Result<RootCertStore, TlsSetupError> {
    let mut store = RootCertStore::empty();
    match roots {
        UpstreamRoots::System => {
            let system = system_roots();
            if system.is_empty() {
                tracing::warn!(
                    "no certificates in the system's store; trusting the bundled Mozilla roots instead"
                );
                eprintln!(
                    "ferry: warning: the system's certificate store is empty or unreadable \
                     (install ca-certificates); trusting the bundled Mozilla roots instead"
                );
                store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            } else {
                // A certificate the store holds but rustls cannot use (an
                // old format, a bad encoding) is skipped, as curl skips it.
                let (added, skipped) = store.add_parsable_certificates(system);
                tracing::debug!(added, skipped, "system roots loaded");
            }
        }
        UpstreamRoots::Bundled => {
            store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        UpstreamRoots::None => {}
    }
    for path in extra_ca {
        for cert in read_pem_certs(path)? {
            store.add(cert).map_err(|e| TlsSetupError::CaFile {
                path: path.clone(),
                detail: e.to_string(),
            })?;
        }
    }
    if store.is_empty() {
        return Err(TlsSetupError::NoRoots);
    }
    Ok(store)
}

/// The certificates of the operating system's store (`SSL_CERT_FILE` and
/// `SSL_CERT_DIR` name another, as for OpenSSL).
pub fn system_roots() -> Vec<CertificateDer<'static>> {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::debug!(error = %e, "while reading the system's certificate store");
    }
    found.certs
}

/// The system's store as one PEM text, for clients that take a single file.
pub fn system_roots_pem() -> String {
    use base64::Engine as _;
    let mut out = String::new();
    for cert in system_roots() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(line));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    out
}

fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let ca_err = |detail: String| TlsSetupError::CaFile {
        path: path.to_path_buf(),
        detail,
    };
    let pem = std::fs::read(path).map_err(|e| ca_err(e.to_string()))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ca_err(e.to_string()))?;
    if certs.is_empty() {
        return Err(ca_err("no PEM certificates in the file".into()));
    }
    Ok(certs)
}
