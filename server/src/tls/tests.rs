use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;

use super::*;

struct Ca(CertifiedIssuer<'static, KeyPair>);

impl Ca {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Ca(CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA"))
    }

    /// A leaf for 127.0.0.1: (cert PEM, key PEM, cert DER).
    fn leaf(&self) -> (String, String, Vec<u8>) {
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .expect("params")
            .signed_by(&key, &self.0)
            .expect("leaf");
        (cert.pem(), key.serialize_pem(), cert.der().to_vec())
    }
}

fn write(dir: &Path, cert: &str, key: &str) -> TlsSettings {
    // Written aside and renamed into place, as certificate tools do.
    for (name, text) in [("cert.pem", cert), ("key.pem", key)] {
        let tmp = dir.join(format!("{name}.new"));
        std::fs::write(&tmp, text).expect("write");
        std::fs::rename(&tmp, dir.join(name)).expect("rename");
    }
    TlsSettings {
        cert: Some(dir.join("cert.pem")),
        key: Some(dir.join("key.pem")),
        client_ca: None,
    }
}

async fn serve(tls: Arc<ServerTls>) -> (SocketAddr, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = CancellationToken::new();
    let mut incoming = accept_tls(listener, tls, stop.clone());
    tokio::spawn(async move { while incoming.accept().await.is_some() {} });
    (addr, stop)
}

/// The certificate a fresh connection is served.
async fn served(addr: SocketAddr, ca: &Ca) -> Vec<u8> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.0.der().clone()).expect("root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let stream = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("handshake");
    let (_, session) = stream.get_ref();
    session.peer_certificates().expect("a certificate")[0].to_vec()
}

#[tokio::test]
async fn a_changed_certificate_is_served_to_the_next_connection() {
    let ca = Ca::new();
    let dir = tempfile::tempdir().expect("dir");
    let (cert, key, first) = ca.leaf();
    let settings = write(dir.path(), &cert, &key);
    let (addr, stop) = serve(Arc::new(ServerTls::load(&settings).expect("loads"))).await;
    assert_eq!(served(addr, &ca).await, first);

    let (cert, key, renewed) = ca.leaf();
    write(dir.path(), &cert, &key);

    assert_eq!(served(addr, &ca).await, renewed);
    stop.cancel();
}

#[tokio::test]
async fn a_bad_new_certificate_keeps_the_old_one() {
    let ca = Ca::new();
    let dir = tempfile::tempdir().expect("dir");
    let (cert, key, first) = ca.leaf();
    let settings = write(dir.path(), &cert, &key);
    let tls = Arc::new(ServerTls::load(&settings).expect("loads"));
    let (addr, stop) = serve(tls.clone()).await;

    // A renewal that wrote the new certificate but a key that does not fit it.
    let (cert, _, _) = ca.leaf();
    write(dir.path(), &cert, &key);
    assert_eq!(served(addr, &ca).await, first, "the old one is kept");
    assert!(!tls.reload(), "a forced reload refuses it too");
    assert_eq!(served(addr, &ca).await, first);

    let (cert, key, fixed) = ca.leaf();
    write(dir.path(), &cert, &key);
    assert!(tls.reload());
    assert_eq!(served(addr, &ca).await, fixed);
    stop.cancel();
}

#[test]
fn unusable_files_stop_the_start() {
    let ca = Ca::new();
    let dir = tempfile::tempdir().expect("dir");
    let (cert, _, _) = ca.leaf();
    let (_, other_key, _) = ca.leaf();
    let settings = write(dir.path(), &cert, &other_key);
    assert!(matches!(
        ServerTls::load(&settings),
        Err(TlsError::Certificate(_))
    ));
    let settings = write(dir.path(), "not a certificate", &other_key);
    assert!(matches!(
        ServerTls::load(&settings),
        Err(TlsError::NoCertificate { .. })
    ));
    let missing = TlsSettings {
        cert: Some(dir.path().join("nope.pem")),
        key: Some(dir.path().join("key.pem")),
        client_ca: None,
    };
    let err = ServerTls::load(&missing).expect_err("missing file");
    assert!(err.to_string().contains("nope.pem"), "{err}");
}

#[test]
fn plaintext_is_warned_about_off_loopback_only() {
    let any: SocketAddr = "0.0.0.0:50051".parse().expect("addr");
    let lan: SocketAddr = "192.168.1.5:50051".parse().expect("addr");
    let local: SocketAddr = "127.0.0.1:50051".parse().expect("addr");
    let local6: SocketAddr = "[::1]:50051".parse().expect("addr");
    let warning = plaintext_warning(any, false).expect("a warning");
    assert!(warning.contains("in clear") && warning.contains("MOAI_TLS_CERT"));
    assert!(plaintext_warning(lan, false).is_some());
    assert_eq!(plaintext_warning(any, true), None);
    assert_eq!(plaintext_warning(local, false), None);
    assert_eq!(plaintext_warning(local6, false), None);
}

#[tokio::test]
async fn axum_serves_over_the_same_tls_listener() {
    install();
    let ca = Ca::new();
    let dir = tempfile::tempdir().expect("dir");
    let (cert, key, _) = ca.leaf();
    let settings = write(dir.path(), &cert, &key);
    let tls = Arc::new(ServerTls::load(&settings).expect("loads"));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = CancellationToken::new();
    let incoming = accept_tls(listener, tls, stop.clone());
    assert_eq!(
        axum::serve::Listener::local_addr(&incoming).expect("addr"),
        addr
    );
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "over TLS" }));
    tokio::spawn(axum::serve(incoming, app).into_future());

    let root = reqwest::Certificate::from_der(ca.0.der()).expect("CA");
    let client = reqwest::Client::builder()
        .tls_certs_only([root])
        .build()
        .expect("client");
    let body = client
        .get(format!("https://{addr}/"))
        .send()
        .await
        .expect("GET over TLS")
        .text()
        .await
        .expect("body");
    assert_eq!(body, "over TLS");
    stop.cancel();
}

fn install() {
    moai_proto::tls::install_crypto_provider();
}
