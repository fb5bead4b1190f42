//! A throwaway certificate authority for TLS tests: its root is written to a PEM
//! file the proxy is given with `--upstream-ca`, and it signs origin certificates.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    ca_der: CertificateDer<'static>,
    _dir: tempfile::TempDir,
    pem_path: PathBuf,
}

impl TestCa {
    pub fn new() -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Ferry Test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let pem_path = dir.path().join("test-ca.pem");
        std::fs::write(&pem_path, cert.pem()).unwrap();
        TestCa {
            issuer: Issuer::new(params, key),
            ca_der: cert.der().clone(),
            _dir: dir,
            pem_path,
        }
    }

    /// The CA's root certificate as a PEM file.
    pub fn pem_path(&self) -> &Path {
        &self.pem_path
    }

    pub fn root_der(&self) -> CertificateDer<'static> {
        self.ca_der.clone()
    }

    /// A server config (ALPN h2 and http/1.1) with a certificate for `names`.
    pub fn server_config(&self, names: &[&str]) -> rustls::ServerConfig {
        self.server_config_with(names, false)
    }

    /// As [`TestCa::server_config`], with a certificate that expired
    /// yesterday when `expired`.
    pub fn server_config_with(&self, names: &[&str], expired: bool) -> rustls::ServerConfig {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        if expired {
            let now = time::OffsetDateTime::now_utc();
            params.not_before = now - time::Duration::days(30);
            params.not_after = now - time::Duration::days(1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone(), self.ca_der.clone()], key_der)
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        config
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}
