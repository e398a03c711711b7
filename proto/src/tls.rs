//! TLS as every moai program uses it: one crypto provider (ring) for the
//! whole workspace, and the client side shared by the CLI and the bot: an
//! `https://` server is verified against the system's roots plus
//! `MOAI_CA_CERT`, with a client certificate from `MOAI_TLS_CLIENT_CERT` and
//! `MOAI_TLS_CLIENT_KEY` when given, and a failed handshake is told in one line
//! that says what to do.

use std::error::Error as StdError;
use std::path::{Path, PathBuf};

use rustls::{AlertDescription, CertificateError, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use tonic::transport::{ClientTlsConfig, Endpoint, Identity};

/// Makes ring the process's rustls crypto provider. Every binary calls it
/// first thing (a second call is harmless), so that no library falls back
/// to, or panics for want of, another provider.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The client's TLS files, from the environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// PEM bundle of extra CAs to trust (`MOAI_CA_CERT`), e.g. a team's private CA.
    pub ca_cert: Option<PathBuf>,
    /// PEM client certificate chain (`MOAI_TLS_CLIENT_CERT`).
    pub client_cert: Option<PathBuf>,
    /// PEM key of the client certificate (`MOAI_TLS_CLIENT_KEY`).
    pub client_key: Option<PathBuf>,
}

/// Why the client's TLS settings could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ClientTlsError {
    #[error("cannot read {var} file {}: {source}", path.display())]
    Read {
        var: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{var} file {} holds no usable PEM certificate", path.display())]
    NoCertificate { var: &'static str, path: PathBuf },
    #[error("a client certificate needs both MOAI_TLS_CLIENT_CERT and MOAI_TLS_CLIENT_KEY")]
    HalfIdentity,
    #[error("{0}")]
    Transport(#[from] tonic::transport::Error),
}

impl ClientTls {
    /// `MOAI_CA_CERT`, `MOAI_TLS_CLIENT_CERT` and `MOAI_TLS_CLIENT_KEY` (empty
    /// values count as unset).
    pub fn from_env() -> Self {
        let path = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        ClientTls {
            ca_cert: path("MOAI_CA_CERT"),
            client_cert: path("MOAI_TLS_CLIENT_CERT"),
            client_key: path("MOAI_TLS_CLIENT_KEY"),
        }
    }

    /// An endpoint for `url`: TLS with these settings when it is `https://`,
    /// plaintext otherwise.
    ///
    /// # Errors
    /// A URL that is not a URI, or TLS files that cannot be read.
    pub fn endpoint(&self, url: &str) -> Result<Endpoint, ClientTlsError> {
        let endpoint = Endpoint::from_shared(url.to_owned())?;
        if !url.starts_with("https://") {
            return Ok(endpoint);
        }
        Ok(endpoint.tls_config(self.config()?)?)
    }

    /// The tonic TLS configuration: system roots, `ca_cert`, and the client
    /// identity.
    ///
    /// # Errors
    /// A file that cannot be read or holds no certificate.
    pub fn config(&self) -> Result<ClientTlsConfig, ClientTlsError> {
        // The system's roots are loaded here rather than by tonic, which
        // refuses to connect at all on a system that has none, even when
        // MOAI_CA_CERT names the one CA that matters.
        let mut roots = RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        if let Some(path) = &self.ca_cert {
            let unusable = || ClientTlsError::NoCertificate {
                var: "MOAI_CA_CERT",
                path: path.clone(),
            };
            let pem = read("MOAI_CA_CERT", path)?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| unusable())?;
            if certs.is_empty() {
                return Err(unusable());
            }
            for cert in certs {
                roots.add(cert).map_err(|_| unusable())?;
            }
        }
        let mut config = ClientTlsConfig::new().trust_anchors(roots.roots);
        match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => {
                let cert = read("MOAI_TLS_CLIENT_CERT", cert)?;
                let key = read("MOAI_TLS_CLIENT_KEY", key)?;
                config = config.identity(Identity::from_pem(cert, key));
            }
            (None, None) => {}
            _ => return Err(ClientTlsError::HalfIdentity),
        }
        Ok(config)
    }
}

fn read(var: &'static str, path: &Path) -> Result<Vec<u8>, ClientTlsError> {
    std::fs::read(path).map_err(|source| ClientTlsError::Read {
        var,
        path: path.to_owned(),
        source,
    })
}

/// A failed TLS connection, by what the user can do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsFailure {
    /// The server's certificate is not signed by a CA this client trusts.
    UnknownCa,
    /// The certificate is valid, but not for the host name connected to.
    NameMismatch,
    /// The certificate has expired or is not valid yet.
    Expired,
    /// The server answered something other than TLS (a plaintext server).
    NotTls,
    /// The server asks for a client certificate and none was sent.
    ClientCertRequired,
    /// The server refused the client certificate that was sent.
    ClientCertRefused,
    /// Anything else rustls reports.
    Other(String),
}

impl std::fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsFailure::UnknownCa => {
                "its certificate is signed by an unknown CA; if the server uses a private CA, set MOAI_CA_CERT to that CA's PEM file"
            }
            TlsFailure::NameMismatch => {
                "its certificate is not valid for this host name; use a name the certificate lists"
            }
            TlsFailure::Expired => {
                "its certificate has expired or is not valid yet; the server needs a renewed certificate (or check this machine's clock)"
            }
            TlsFailure::NotTls => {
                "the server does not speak TLS; use http:// for it, or turn TLS on in the server (MOAI_TLS_CERT, MOAI_TLS_KEY)"
            }
            TlsFailure::ClientCertRequired => {
                "the server requires a client certificate; set MOAI_TLS_CLIENT_CERT and MOAI_TLS_CLIENT_KEY"
            }
            TlsFailure::ClientCertRefused => {
                "the server refused this client certificate (MOAI_TLS_CLIENT_CERT); it must be signed by the server's client CA"
            }
            TlsFailure::Other(text) => text,
        })
    }
}

/// The TLS failure somewhere in `err`'s chain of causes, if there is one.
pub fn tls_failure(err: &(dyn StdError + 'static)) -> Option<TlsFailure> {
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(tls) = as_rustls(err) {
            return Some(classify(tls));
        }
        let inner = err
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .map(ToString::to_string);
        if let Some(failure) = inner
            .as_deref()
            .and_then(classify_text)
            .or_else(|| classify_text(&err.to_string()))
        {
            return Some(failure);
        }
        current = err.source();
    }
    None
}

/// HTTP/2 keeps an I/O error only as its text, so an alert that arrives after
/// the handshake (a refused client certificate, in TLS 1.3) is recognised by
/// rustls's wording of it.
fn classify_text(text: &str) -> Option<TlsFailure> {
    const ALERT: &str = "received fatal alert: ";
    let start = text.find(ALERT)? + ALERT.len();
    let alert = text[start..]
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()?;
    let alert = match alert {
        "CertificateRequired" => AlertDescription::CertificateRequired,
        "BadCertificate" => AlertDescription::BadCertificate,
        "UnknownCA" => AlertDescription::UnknownCA,
        "CertificateUnknown" => AlertDescription::CertificateUnknown,
        "UnsupportedCertificate" => AlertDescription::UnsupportedCertificate,
        "CertificateRevoked" => AlertDescription::CertificateRevoked,
        "CertificateExpired" => AlertDescription::CertificateExpired,
        "DecryptError" => AlertDescription::DecryptError,
        _ => return None,
    };
    Some(classify(&rustls::Error::AlertReceived(alert)))
}

/// rustls errors arrive wrapped in `io::Error`, whose `source()` skips the
/// wrapped error itself, so each level is also looked into.
fn as_rustls<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    err.downcast_ref::<rustls::Error>().or_else(|| {
        err.downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    })
}

fn classify(err: &rustls::Error) -> TlsFailure {
    match err {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                TlsFailure::UnknownCa
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                TlsFailure::NameMismatch
            }
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => TlsFailure::Expired,
            other => TlsFailure::Other(format!("the server's certificate is unusable: {other:?}")),
        },
        rustls::Error::InvalidMessage(_) => TlsFailure::NotTls,
        rustls::Error::AlertReceived(AlertDescription::CertificateRequired) => {
            TlsFailure::ClientCertRequired
        }
        rustls::Error::AlertReceived(
            AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::DecryptError,
        ) => TlsFailure::ClientCertRefused,
        other => TlsFailure::Other(format!("TLS failed: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_rustls_error_is_found_and_named() {
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        assert_eq!(tls_failure(&io), Some(TlsFailure::UnknownCa));
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(AlertDescription::CertificateRequired),
        );
        assert_eq!(tls_failure(&io), Some(TlsFailure::ClientCertRequired));
        let h2 = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "received fatal alert: CertificateRequired",
        );
        assert_eq!(tls_failure(&h2), Some(TlsFailure::ClientCertRequired));
        let plain = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(tls_failure(&plain), None);
    }

    #[test]
    fn every_failure_reads_as_one_line() {
        for failure in [
            TlsFailure::UnknownCa,
            TlsFailure::NameMismatch,
            TlsFailure::Expired,
            TlsFailure::NotTls,
            TlsFailure::ClientCertRequired,
            TlsFailure::ClientCertRefused,
        ] {
            let text = failure.to_string();
            assert!(!text.contains('\n'), "{text}");
        }
        assert!(TlsFailure::UnknownCa.to_string().contains("MOAI_CA_CERT"));
    }

    #[test]
    fn half_a_client_identity_is_refused() {
        let tls = ClientTls {
            client_cert: Some(PathBuf::from("/nonexistent/cert.pem")),
            ..ClientTls::default()
        };
        assert!(matches!(tls.config(), Err(ClientTlsError::HalfIdentity)));
    }
}
