//! The local certificate authority (`ferry ca init | show | export`): a P-256
//! key and a self-signed CA certificate valid for ten years, kept in the
//! config directory. The key file is 0600 and is never served; only the
//! certificate leaves the directory.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256,
};
use time::{Duration, OffsetDateTime};

/// The certificate and key file names inside the CA directory.
pub const CERT_FILE: &str = "ca.pem";
pub const KEY_FILE: &str = "ca-key.pem";

const VALIDITY: Duration = Duration::days(3650);
const COMMON_NAME: &str = "Ferry local CA";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    #[error(
        "a CA already exists in {0}; `ferry ca init --force` replaces it (every client that trusts the old one must then install the new one)"
    )]
    Exists(PathBuf),
    #[error("no CA in {0}; create one with `ferry ca init`")]
    Missing(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a usable CA: {why}")]
    Invalid { path: PathBuf, why: String },
    /// The key signs certificates every client of the proxy trusts: anyone
    /// who can read it can impersonate any site to them.
    #[error(
        "{path} can be read by other users (mode {mode:o}); whoever reads it can impersonate any site to this proxy's clients. Run: chmod 600 {path}"
    )]
    KeyExposed { path: PathBuf, mode: u32 },
    #[error("could not create the CA: {0}")]
    Generate(#[from] rcgen::Error),
}

/// A CA as read from (or just written to) its directory.
pub struct LocalCa {
    dir: PathBuf,
    cert_pem: String,
    cert_der: Vec<u8>,
    key: KeyPair,
    not_after: OffsetDateTime,
}

impl std::fmt::Debug for LocalCa {
    // The key stays out of every log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCa")
            .field("dir", &self.dir)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// The default CA directory: the platform's config dir, e.g. `~/.config/ferry`.
pub fn default_dir() -> PathBuf {
    dirs::config_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("ferry")
}

/// The configured CA directory (`ca_dir`), else [`default_dir`].
pub fn dir_or_default(configured: Option<&Path>) -> PathBuf {
    configured.map_or_else(default_dir, Path::to_path_buf)
}

impl LocalCa {
    /// Creates a CA in `dir`. An existing one is kept unless `force`.
    pub fn init(dir: &Path, force: bool) -> Result<LocalCa, CaError> {
        let (cert_path, key_path) = paths(dir);
        if !force && (cert_path.exists() || key_path.exists()) {
            return Err(CaError::Exists(dir.to_path_buf()));
        }
        create_private_dir(dir)?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params
            .distinguished_name
            .push(DnType::CommonName, COMMON_NAME);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Ferry");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + VALIDITY;
        let cert = params.self_signed(&key)?;
        // The key first, so a certificate on disk always has its key.
        write_replacing(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
        write_replacing(&cert_path, cert.pem().as_bytes(), 0o644)?;
        LocalCa::load(dir)
    }

    /// Reads the CA in `dir`, checking that the key belongs to the
    /// certificate and that the certificate is a CA.
    pub fn load(dir: &Path) -> Result<LocalCa, CaError> {
        let (cert_path, key_path) = paths(dir);
        if !cert_path.exists() || !key_path.exists() {
            return Err(CaError::Missing(dir.to_path_buf()));
        }
        let read = |path: &Path| {
            fs::read_to_string(path).map_err(|source| CaError::Io {
                path: path.to_path_buf(),
                source,
            })
        };
        check_key_is_private(&key_path)?;
        let cert_pem = read(&cert_path)?;
        let key_pem = read(&key_path)?;
        let invalid = |path: &Path, why: String| CaError::Invalid {
            path: path.to_path_buf(),
            why,
        };
        let key = KeyPair::from_pem(&key_pem).map_err(|e| invalid(&key_path, e.to_string()))?;
        let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
            .map_err(|e| invalid(&cert_path, e.to_string()))?;
        let cert = pem
            .parse_x509()
            .map_err(|e| invalid(&cert_path, e.to_string()))?;
        if !cert.is_ca() {
            return Err(invalid(&cert_path, "the certificate is not a CA".into()));
        }
        if cert.public_key().raw != rcgen::PublicKeyData::subject_public_key_info(&key).as_slice() {
            return Err(invalid(
                &key_path,
                format!("the key does not belong to {}", cert_path.display()),
            ));
        }
        let not_after = cert.validity().not_after.to_datetime();
        let cert_der = pem.contents.clone();
        Ok(LocalCa {
            dir: dir.to_path_buf(),
            cert_pem,
            cert_der,
            key,
            not_after,
        })
    }

    pub fn cert_path(&self) -> PathBuf {
        paths(&self.dir).0
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// The certificate's SHA-256 fingerprint, as browsers and `openssl x509
    /// -fingerprint -sha256` show it (`AB:CD:…`).
    pub fn fingerprint(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.cert_der);
        let hex: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
        hex.join(":")
    }

    /// The CA as the signer of the leaves the proxy mints.
    pub fn issuer(&self) -> Result<rcgen::Issuer<'static, KeyPair>, CaError> {
        let key = KeyPair::from_pem(&self.key.serialize_pem())?;
        let der = rustls::pki_types::CertificateDer::from(self.cert_der.clone());
        Ok(rcgen::Issuer::from_ca_cert_der(&der, key)?)
    }

    /// Writes one PEM file holding the operating system's trusted roots and
    /// this CA's certificate, for clients that take a single CA file (so
    /// they keep trusting every site while also trusting the proxy); the
    /// number of system certificates is returned.
    pub fn export_bundle(&self, path: &Path) -> Result<usize, CaError> {
        let system = crate::upstream::trust::system_roots_pem();
        let count = system.matches("-----BEGIN CERTIFICATE-----").count();
        let mut bundle = system;
        bundle.push_str(&self.cert_pem);
        write_replacing(path, bundle.as_bytes(), 0o644)?;
        Ok(count)
    }

    /// Writes the certificate (never the key) as `<prefix>.pem` and
    /// `<prefix>.der`, and returns the two paths.
    pub fn export(&self, prefix: &Path) -> Result<(PathBuf, PathBuf), CaError> {
        let pem = with_suffix(prefix, "pem");
        let der = with_suffix(prefix, "der");
        write_replacing(&pem, self.cert_pem.as_bytes(), 0o644)?;
        write_replacing(&der, &self.cert_der, 0o644)?;
        Ok((pem, der))
    }
}

fn paths(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join(CERT_FILE), dir.join(KEY_FILE))
}

fn with_suffix(prefix: &Path, ext: &str) -> PathBuf {
    let mut name = prefix.as_os_str().to_os_string();
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}

/// Creates `dir` for the CA (0700), or tightens it to 0700 when it exists:
/// what is in it is for the proxy's user alone.
fn create_private_dir(dir: &Path) -> Result<(), CaError> {
    let io = |source| CaError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io)?;
    }
    Ok(())
}

/// Refuses a key file that users other than its owner can read or write,
/// as ssh does for its keys.
fn check_key_is_private(key_path: &Path) -> Result<(), CaError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = fs::metadata(key_path).map_err(|source| CaError::Io {
            path: key_path.to_path_buf(),
            source,
        })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(CaError::KeyExposed {
                path: key_path.to_path_buf(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = key_path;
    Ok(())
}

/// Writes `path` whole or not at all: a temporary file created with `mode`
/// (so the key is never readable by others, not even for a moment), then
/// renamed over the old one.
fn write_replacing(path: &Path, contents: &[u8], mode: u32) -> Result<(), CaError> {
    let io = |source| CaError::Io {
        path: path.to_path_buf(),
        source,
    };
    let temp = with_suffix(path, "tmp");
    let _ = fs::remove_file(&temp);
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&temp).map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)?;
    fs::rename(&temp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn init_writes_a_ten_year_p256_ca_with_a_private_key() {
        let dir = tempfile::tempdir().unwrap();
        let ca_dir = dir.path().join("ferry");
        let ca = LocalCa::init(&ca_dir, false).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&ca_dir.join(KEY_FILE)), 0o600);
            assert_eq!(mode(&ca_dir), 0o700);
        }
        let (_, cert) = x509_parser::parse_x509_certificate(ca.cert_der()).unwrap();
        assert!(cert.is_ca());
        assert_eq!(
            cert.public_key()
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok()),
            Some(x509_parser::oid_registry::OID_EC_P256)
        );
        let years = (ca.not_after() - OffsetDateTime::now_utc()).whole_days();
        assert!((3649..=3650).contains(&years), "{years} days");
        assert_eq!(ca.fingerprint().len(), 32 * 3 - 1);
    }

    #[test]
    fn init_keeps_an_existing_ca_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let first = LocalCa::init(dir.path(), false).unwrap();
        let refused = LocalCa::init(dir.path(), false).unwrap_err();
        assert!(matches!(refused, CaError::Exists(_)), "{refused}");
        assert_eq!(
            LocalCa::load(dir.path()).unwrap().fingerprint(),
            first.fingerprint(),
            "the refused init changed nothing"
        );
        let second = LocalCa::init(dir.path(), true).unwrap();
        assert_ne!(second.fingerprint(), first.fingerprint());
    }

    #[test]
    fn a_key_that_is_not_the_certificates_is_refused() {
        let one = tempfile::tempdir().unwrap();
        let two = tempfile::tempdir().unwrap();
        LocalCa::init(one.path(), false).unwrap();
        LocalCa::init(two.path(), false).unwrap();
        fs::copy(two.path().join(KEY_FILE), one.path().join(KEY_FILE)).unwrap();
        let err = LocalCa::load(one.path()).unwrap_err();
        assert!(matches!(err, CaError::Invalid { .. }), "{err}");
        fs::write(one.path().join(CERT_FILE), "not a certificate").unwrap();
        assert!(matches!(
            LocalCa::load(one.path()).unwrap_err(),
            CaError::Invalid { .. }
        ));
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            LocalCa::load(empty.path()).unwrap_err(),
            CaError::Missing(_)
        ));
    }

    #[test]
    fn export_writes_the_certificate_and_never_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let ca = LocalCa::init(&dir.path().join("ca"), false).unwrap();
        let (pem, der) = ca.export(&dir.path().join("ferry-ca")).unwrap();
        assert_eq!(fs::read(&der).unwrap(), ca.cert_der());
        let pem_text = fs::read_to_string(&pem).unwrap();
        assert_eq!(pem_text, ca.cert_pem());
        assert!(!pem_text.contains("PRIVATE KEY"));
    }
}
