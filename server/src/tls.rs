//! Server TLS for any listener: the certificate, key and optional client CA
//! come from PEM files that are re-read when they change (checked at each new
//! connection) or on SIGHUP, so a renewed certificate needs no restart. A new
//! set that does not load keeps the one being served, and the reason is logged.
//!
//! A listener uses it in one of two ways:
//! - [`accept_tls`] turns a bound [`TcpListener`] into [`TlsIncoming`], the
//!   finished TLS connections (handshakes run concurrently, off the accept
//!   loop): a `Stream` for tonic's `serve_with_incoming*`, and an
//!   `axum::serve::Listener` for `axum::serve`;
//! - [`ServerTls::acceptor`] hands out a [`TlsAcceptor`] with the current
//!   certificate for a listener that runs its own accept loop.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

/// How long a client may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Finished handshakes waiting for the server to take them.
const READY_CONNECTIONS: usize = 64;

/// The `[tls]` table and `MOAI_TLS_*`: PEM files; TLS is on when `cert` is set.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    /// Certificate chain, leaf first (`MOAI_TLS_CERT`).
    pub cert: Option<PathBuf>,
    /// Private key of the leaf, PKCS#8, PKCS#1 or SEC1 (`MOAI_TLS_KEY`).
    pub key: Option<PathBuf>,
    /// When set, clients must present a certificate signed by one of these
    /// CAs (`MOAI_TLS_CLIENT_CA`); API keys still apply.
    pub client_ca: Option<PathBuf>,
}

impl TlsSettings {
    /// Whether TLS is configured.
    pub fn enabled(&self) -> bool {
        self.cert.is_some()
    }
}

/// Why a certificate set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS needs both a certificate and a key (MOAI_TLS_CERT and MOAI_TLS_KEY)")]
    Incomplete,
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{} holds no PEM certificate", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{} holds no usable PEM private key: {reason}", path.display())]
    Key { path: PathBuf, reason: String },
    #[error("the key does not fit the certificate, or the certificate is unusable: {0}")]
    Certificate(#[source] rustls::Error),
    #[error("client CA {}: {reason}", path.display())]
    ClientCa { path: PathBuf, reason: String },
}

/// What the files looked like when last read; a change means "re-read".
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stamp(Vec<Option<(u64, Option<SystemTime>, u64)>>);

/// The certificate being served, and the files it comes from.
pub struct ServerTls {
    files: Files,
    state: Mutex<State>,
}

#[derive(Clone, Debug)]
struct Files {
    cert: PathBuf,
    key: PathBuf,
    client_ca: Option<PathBuf>,
}

struct State {
    config: Arc<ServerConfig>,
    /// The stamp of the files `config` was built from.
    loaded: Stamp,
    /// The stamp of a set that failed to load, so its failure is logged once.
    rejected: Option<Stamp>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Loads the configured files.
    ///
    /// # Errors
    /// [`TlsError`] when a file is missing or unusable: at start-up that stops
    /// the server, unlike a bad renewal later.
    pub fn load(settings: &TlsSettings) -> Result<Self, TlsError> {
        let (Some(cert), Some(key)) = (&settings.cert, &settings.key) else {
            return Err(TlsError::Incomplete);
        };
        let files = Files {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: settings.client_ca.clone(),
        };
        let loaded = files.stamp();
        let config = files.server_config()?;
        Ok(Self {
            files,
            state: Mutex::new(State {
                config,
                loaded,
                rejected: None,
            }),
        })
    }

    /// The configuration for a new connection: re-read first if the files
    /// changed since they were last read.
    pub fn config(&self) -> Arc<ServerConfig> {
        let stamp = self.files.stamp();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if stamp != state.loaded && state.rejected.as_ref() != Some(&stamp) {
            self.replace(&mut state, stamp, "changed on disk");
        }
        state.config.clone()
    }

    /// Re-reads the files whether or not they look changed (SIGHUP); returns
    /// whether the new set is now served.
    pub fn reload(&self) -> bool {
        let stamp = self.files.stamp();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        self.replace(&mut state, stamp, "reload requested")
    }

    /// A handshake acceptor with the current certificate.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config())
    }

    fn replace(&self, state: &mut State, stamp: Stamp, why: &'static str) -> bool {
        match self.files.server_config() {
            Ok(config) => {
                state.config = config;
                state.loaded = stamp;
                state.rejected = None;
                tracing::info!(cert = %self.files.cert.display(), why, "TLS certificate loaded");
                true
            }
            Err(e) => {
                state.rejected = Some(stamp);
                tracing::error!(
                    cert = %self.files.cert.display(),
                    why,
                    error = %e,
                    "new TLS certificate not loaded; still serving the previous one"
                );
                false
            }
        }
    }
}

impl Files {
    fn stamp(&self) -> Stamp {
        let paths = [Some(&self.cert), Some(&self.key), self.client_ca.as_ref()];
        Stamp(
            paths
                .into_iter()
                .flatten()
                .map(|path| std::fs::metadata(path).ok().map(|m| fingerprint(&m)))
                .collect(),
        )
    }

    fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let certs = read_certs(&self.cert)?;
        if certs.is_empty() {
            return Err(TlsError::NoCertificate {
                path: self.cert.clone(),
            });
        }
        let key_pem = read(&self.key)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Key {
            path: self.key.clone(),
            reason: e.to_string(),
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Certificate)?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let ca_error = |reason: String| TlsError::ClientCa {
                    path: path.clone(),
                    reason,
                };
                let mut roots = RootCertStore::empty();
                for cert in read_certs(path)? {
                    roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .map_err(|e| ca_error(e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .map_err(TlsError::Certificate)?;
        // gRPC needs HTTP/2; an HTTP listener may also be reached over HTTP/1.1.
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TlsError::NoCertificate {
            path: path.to_owned(),
        })
}

/// Size, modification time and (on Unix) inode: a renewal that writes new
/// files or swaps a symlink changes at least one of them.
fn fingerprint(meta: &std::fs::Metadata) -> (u64, Option<SystemTime>, u64) {
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(meta);
    #[cfg(not(unix))]
    let inode = 0;
    (meta.len(), meta.modified().ok(), inode)
}

/// Re-reads the certificate whenever the process gets SIGHUP, until `stop`.
/// The handler is installed when this is called (so a SIGHUP right after
/// start-up cannot end the process); the returned future does the reloading.
pub fn reload_on_sighup(
    tls: Arc<ServerTls>,
    stop: CancellationToken,
) -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let hangups = {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::hangup())
            .inspect_err(|e| {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; certificates still reload when their files change");
            })
            .ok()
    };
    async move {
        #[cfg(unix)]
        if let Some(mut hangups) = hangups {
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    got = hangups.recv() => {
                        if got.is_none() {
                            return;
                        }
                        tls.reload();
                    }
                }
            }
        }
        let _ = tls;
        stop.cancelled().await;
    }
}

/// Finished TLS connections from one listener, for `serve_with_incoming`.
pub struct TlsIncoming {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: Option<SocketAddr>,
}

impl TlsIncoming {
    /// The next connection whose handshake succeeded, with the peer's
    /// address; `None` once stopped.
    pub async fn accept(&mut self) -> Option<(TlsStream<TcpStream>, SocketAddr)> {
        self.ready.recv().await
    }
}

impl axum::serve::Listener for TlsIncoming {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // Stopped: no more connections; axum's graceful shutdown ends the serve.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.local_addr
            .ok_or_else(|| io::Error::other("the listener's address is unknown"))
    }
}

impl futures::Stream for TlsIncoming {
    type Item = io::Result<TlsStream<TcpStream>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.ready
            .poll_recv(cx)
            .map(|next| next.map(|(stream, _)| Ok(stream)))
    }
}

/// Accepts TCP connections on `listener` until `stop` and runs each
/// handshake in its own task (a slow or silent client holds up nobody), with
/// the certificate current at that moment. Failed handshakes (no client
/// certificate, a client that does not speak TLS) are logged at debug.
pub fn accept_tls(
    listener: TcpListener,
    tls: Arc<ServerTls>,
    stop: CancellationToken,
) -> TlsIncoming {
    let local_addr = listener.local_addr().ok();
    let (tx, ready) = mpsc::channel(READY_CONNECTIONS);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = stop.cancelled() => return,
                () = tx.closed() => return,
                accepted = listener.accept() => accepted,
            };
            let (tcp, peer) = match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off a little
                    // rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = tls.acceptor();
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send((stream, peer)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    TlsIncoming { ready, local_addr }
}

/// The start-up warning for a listener without TLS on a non-loopback
/// address, where every API key would travel in clear.
pub fn plaintext_warning(addr: SocketAddr, tls: bool) -> Option<String> {
    (!tls && !addr.ip().is_loopback()).then(|| {
        format!(
            "listening on {addr} without TLS: API keys travel in clear; set MOAI_TLS_CERT and MOAI_TLS_KEY (or [tls] in the config file), or listen on 127.0.0.1 behind a TLS proxy"
        )
    })
}

#[cfg(test)]
mod tests;
