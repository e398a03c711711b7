//! Certificates for TLS tests, made in the test: a private CA, server
//! certificates for `127.0.0.1` (or any names), client certificates, and the
//! PEM files a server and a client read.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use moai_server::tls::TlsSettings;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use rustls::pki_types::{CertificateDer, ServerName};
use tempfile::TempDir;

/// A certificate and its key, as PEM, plus the certificate's DER.
#[derive(Clone, Debug)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

/// A private CA that lives as long as the test.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    /// A fresh CA named `name`.
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().expect("CA key");
        Self {
            issuer: CertifiedIssuer::self_signed(params, key).expect("CA certificate"),
        }
    }

    /// The CA certificate, PEM (what `MOAI_CA_CERT` and `MOAI_TLS_CLIENT_CA` name).
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// The CA certificate, DER.
    pub fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// A server certificate valid for `names` (DNS names or IP addresses).
    pub fn server(&self, names: &[&str]) -> Issued {
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .expect("server params");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params)
    }

    /// A server certificate for `127.0.0.1` that expired last year.
    pub fn expired_server(&self) -> Issued {
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("server params");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        self.sign(params)
    }

    /// A client certificate for `name`.
    pub fn client(&self, name: &str) -> Issued {
        let mut params = CertificateParams::new(Vec::new()).expect("client params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params)
    }

    fn sign(&self, params: CertificateParams) -> Issued {
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }
}

/// PEM files in a temp dir: the server's certificate and key, and the CA.
pub struct TlsFiles {
    pub dir: TempDir,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

impl TlsFiles {
    /// Writes `server` and the CA that signed it.
    pub fn new(ca: &TestCa, server: &Issued) -> Self {
        let dir = tempfile::tempdir().expect("tls dir");
        let files = Self {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
            ca: dir.path().join("ca.pem"),
            dir,
        };
        std::fs::write(&files.ca, ca.pem()).expect("write ca.pem");
        files.replace(server);
        files
    }

    /// Replaces the server's certificate and key the way certificate tools
    /// do: written aside, then renamed into place.
    pub fn replace(&self, server: &Issued) {
        write_atomically(&self.cert, &server.cert_pem);
        write_atomically(&self.key, &server.key_pem);
    }

    /// Writes another file (a client certificate, a second CA) next to these.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write a tls file");
        path
    }

    /// The server's `[tls]` settings, without client certificates.
    pub fn settings(&self) -> TlsSettings {
        TlsSettings {
            cert: Some(self.cert.clone()),
            key: Some(self.key.clone()),
            client_ca: None,
        }
    }
}

fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename into place");
}

/// The leaf certificate a fresh TLS connection to `addr` is served,
/// verified against `ca` for the name `127.0.0.1`.
pub async fn served_certificate(addr: SocketAddr, ca: &TestCa) -> Vec<u8> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der()).expect("CA as root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake");
    let (_, session) = stream.get_ref();
    session
        .peer_certificates()
        .and_then(|certs| certs.first())
        .expect("the server sent a certificate")
        .to_vec()
}
