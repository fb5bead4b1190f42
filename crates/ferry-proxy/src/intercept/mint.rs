//! Leaf certificates for intercepted hosts, signed by the local CA, and the
//! TLS server configs that present them, kept in a bounded LRU by host.
//!
//! What browsers and platforms require of a leaf (learnt from the peers'
//! trackers): the name in the SAN (a DNS SAN, or an IP SAN for an address),
//! the serverAuth extended key usage, a validity of at most 180 days counting
//! the backdate, and a subject key identifier that is not the CA's. One key
//! serves every leaf: making a key per host would cost a keygen per new host
//! for nothing, since the key never leaves the process.

use std::net::IpAddr;
use std::sync::Arc;

use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, SanType, SerialNumber,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};

use super::ca::{CaError, LocalCa};
use crate::host::is_host_or_address;

/// Backdated so a client whose clock is a little behind accepts the leaf.
pub const BACKDATE: Duration = Duration::hours(1);
/// Total validity, backdate included: under the 180 days browsers allow.
pub const VALIDITY: Duration = Duration::days(179);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MintError {
    #[error("{0:?} is not a host name a certificate can name")]
    BadHost(String),
    #[error("could not make a certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("could not set up TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error(transparent)]
    Ca(#[from] CaError),
}

/// Mints leaves for hosts and keeps the last `capacity` hosts' configs.
pub struct Minter {
    issuer: Issuer<'static, KeyPair>,
    ca_der: CertificateDer<'static>,
    leaf_key: KeyPair,
    configs: quick_cache::sync::Cache<String, Arc<ServerConfig>>,
}

impl Minter {
    pub fn new(ca: &LocalCa, capacity: usize) -> Result<Minter, MintError> {
        Ok(Minter {
            issuer: ca.issuer()?,
            ca_der: CertificateDer::from(ca.cert_der().to_vec()),
            leaf_key: KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?,
            configs: quick_cache::sync::Cache::new(capacity.max(1)),
        })
    }

    /// The server config presenting a leaf for `host` (a name or an IP
    /// address), ALPN h2 and http/1.1; minted on first use.
    pub fn server_config(&self, host: &str) -> Result<Arc<ServerConfig>, MintError> {
        let host = canonical_host(host)?;
        if let Some(config) = self.configs.get(&host) {
            return Ok(config);
        }
        let leaf = self.leaf(&host)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![leaf, self.ca_der.clone()], key)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let config = Arc::new(config);
        self.configs.insert(host, config.clone());
        Ok(config)
    }

    /// How many hosts' configs are kept now.
    pub fn cached(&self) -> usize {
        self.configs.len()
    }

    fn leaf(&self, host: &str) -> Result<CertificateDer<'static>, MintError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let san = match host.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(
                host.to_string()
                    .try_into()
                    .map_err(|_| MintError::BadHost(host.into()))?,
            ),
        };
        params.subject_alt_names = vec![san];
        // Written out as CA:false, which also gives the leaf its own subject
        // key identifier (from the leaf key, so never the CA's).
        params.is_ca = IsCa::ExplicitNoCa;
        params.distinguished_name.push(DnType::CommonName, host);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial());
        let now = OffsetDateTime::now_utc();
        params.not_before = now - BACKDATE;
        params.not_after = params.not_before + VALIDITY;
        Ok(params
            .signed_by(&self.leaf_key, &self.issuer)?
            .der()
            .clone())
    }
}

/// Lower case, no brackets around an IPv6 address, no trailing dot: one
/// cache entry per host however the client spelled it. Only a host name or
/// a standard IP address gets a leaf: never a wildcard, and never another
/// spelling of an address.
fn canonical_host(host: &str) -> Result<String, MintError> {
    if !is_host_or_address(host) {
        return Err(MintError::BadHost(host.into()));
    }
    let trimmed = host.trim_start_matches('[').trim_end_matches(']');
    let trimmed = trimmed.strip_suffix('.').unwrap_or(trimmed);
    Ok(trimmed.to_ascii_lowercase())
}

/// A positive 128-bit serial: serials must be unique per issuer, and a CA
/// re-created with `--force` must not repeat the old one's.
fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use x509_parser::extensions::{GeneralName, ParsedExtension};
    use x509_parser::prelude::*;

    fn minter() -> (tempfile::TempDir, LocalCa, Minter) {
        let dir = tempfile::tempdir().unwrap();
        let ca = LocalCa::init(dir.path(), false).unwrap();
        let minter = Minter::new(&ca, 2).unwrap();
        (dir, ca, minter)
    }

    fn leaf_of(minter: &Minter, host: &str) -> Vec<u8> {
        minter
            .leaf(&canonical_host(host).unwrap())
            .unwrap()
            .to_vec()
    }

    fn ski(cert: &X509Certificate<'_>) -> Vec<u8> {
        cert.extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
                _ => None,
            })
            .unwrap()
    }

    #[test]
    fn a_leaf_has_what_browsers_require() {
        let (_dir, ca, minter) = minter();
        let der = leaf_of(&minter, "Example.TEST");
        let (_, leaf) = parse_x509_certificate(&der).unwrap();
        let (_, root) = parse_x509_certificate(ca.cert_der()).unwrap();
        assert!(!leaf.is_ca());
        assert_eq!(leaf.issuer(), root.subject());
        leaf.verify_signature(Some(root.public_key())).unwrap();
        let sans = leaf.subject_alternative_name().unwrap().unwrap();
        assert_eq!(
            sans.value.general_names,
            vec![GeneralName::DNSName("example.test")]
        );
        let eku = leaf.extended_key_usage().unwrap().unwrap();
        assert!(eku.value.server_auth);
        let validity = leaf.validity();
        let total = validity.not_after.timestamp() - validity.not_before.timestamp();
        assert!(total <= 180 * 86400, "{total} s");
        let backdate = OffsetDateTime::now_utc().unix_timestamp() - validity.not_before.timestamp();
        assert!((0..=3600 + 5).contains(&backdate), "{backdate} s");
        assert_ne!(
            ski(&leaf),
            ski(&root),
            "Windows SChannel breaks on equal SKIs"
        );
    }

    #[test]
    fn an_address_gets_an_ip_san() {
        let (_dir, _ca, minter) = minter();
        for (host, ip) in [
            ("192.168.1.11", "192.168.1.11".parse::<IpAddr>().unwrap()),
            ("[::1]", "::1".parse().unwrap()),
        ] {
            let der = leaf_of(&minter, host);
            let (_, leaf) = parse_x509_certificate(&der).unwrap();
            let sans = leaf.subject_alternative_name().unwrap().unwrap();
            let octets = match ip {
                IpAddr::V4(v4) => v4.octets().to_vec(),
                IpAddr::V6(v6) => v6.octets().to_vec(),
            };
            assert_eq!(
                sans.value.general_names,
                vec![GeneralName::IPAddress(&octets)],
                "{host}"
            );
        }
    }

    #[test]
    fn leaves_share_one_key_and_configs_are_kept_per_host_within_the_bound() {
        let (_dir, _ca, minter) = minter();
        let a = leaf_of(&minter, "a.test");
        let b = leaf_of(&minter, "b.test");
        let key = |der: &[u8]| {
            let (_, c) = parse_x509_certificate(der).unwrap();
            c.public_key().raw.to_vec()
        };
        assert_eq!(key(&a), key(&b));
        let first = minter.server_config("a.test").unwrap();
        let again = minter.server_config("A.test.").unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "one entry however it is spelled"
        );
        for host in ["b.test", "c.test", "d.test", "e.test"] {
            minter.server_config(host).unwrap();
        }
        assert!(minter.cached() <= 2, "{}", minter.cached());
        assert!(matches!(
            minter.server_config("bad host/x"),
            Err(MintError::BadHost(_))
        ));
        for bad in [
            "",
            "*.wild.test",
            "a..b",
            "-lead.test",
            "2130706433",
            "0x7f.1",
        ] {
            assert!(
                matches!(minter.server_config(bad), Err(MintError::BadHost(_))),
                "{bad}"
            );
        }
    }

    /// A TLS client that trusts only the CA (rustls' webpki checks the
    /// chain, the SAN, the EKU and the validity) completes a handshake
    /// with the minted config, for a name and for an address.
    #[tokio::test]
    async fn a_client_that_trusts_the_ca_accepts_the_leaf() {
        let (_dir, ca, minter) = minter();
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(ca.cert_der().to_vec()))
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        for (host, name) in [("shop.test", "shop.test"), ("[::1]", "::1")] {
            let acceptor = tokio_rustls::TlsAcceptor::from(minter.server_config(host).unwrap());
            let (near, far) = tokio::io::duplex(64 * 1024);
            let server = tokio::spawn(async move { acceptor.accept(far).await.map(|_| ()) });
            let server_name = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
            let client_side = connector.connect(server_name, near).await.unwrap();
            server.await.unwrap().unwrap();
            drop(client_side);
        }
        // A name the leaf was not made for is refused.
        let acceptor = tokio_rustls::TlsAcceptor::from(minter.server_config("shop.test").unwrap());
        let (near, far) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move { acceptor.accept(far).await.map(|_| ()) });
        let other = rustls::pki_types::ServerName::try_from("bank.test").unwrap();
        assert!(connector.connect(other, near).await.is_err());
    }
}
