//! The connection to the server: one channel, the bearer key on every call, and
//! the three service clients.

use std::time::Duration;

use moai_proto::tls::{ClientTls, ClientTlsError, tls_failure};
use moai_proto::v1::discussion_service_client::DiscussionServiceClient;
use moai_proto::v1::model_service_client::ModelServiceClient;
use moai_proto::v1::project_service_client::ProjectServiceClient;
use moai_proto::v1::usage_service_client::UsageServiceClient;
use tonic::Status;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::config::ApiKey;
use crate::errors::{CallContext, CliError, from_status};

/// How long to wait for the TCP connection before calling the server unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Adds `authorization: Bearer <key>` to every request.
#[derive(Clone)]
pub struct Auth {
    header: MetadataValue<Ascii>,
}

impl Interceptor for Auth {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.header.clone());
        Ok(request)
    }
}

/// A channel with the key attached.
pub type Svc = InterceptedService<Channel, Auth>;

/// The connected clients, plus what error messages need to know.
#[derive(Clone)]
pub struct Client {
    /// The server address.
    pub server: String,
    /// Where the key came from.
    pub key_source: String,
    /// The CLI command being run, such as `open`.
    pub command: &'static str,
    /// `moai.v1.ProjectService`.
    pub projects: ProjectServiceClient<Svc>,
    /// `moai.v1.DiscussionService`.
    pub discussions: DiscussionServiceClient<Svc>,
    /// `moai.v1.ModelService`.
    pub models: ModelServiceClient<Svc>,
    /// `moai.v1.UsageService`.
    pub usage: UsageServiceClient<Svc>,
}

/// Opens the connection to `server`, before any key is looked at: a server
/// that is not running is the first thing to say.
///
/// # Errors
/// [`CliError::Unreachable`] when no connection can be made,
/// [`CliError::Tls`] when the TLS handshake fails, and
/// [`CliError::Usage`] for an address or TLS files that cannot be used.
#[tracing::instrument]
pub async fn connect(server: &str) -> Result<Channel, CliError> {
    let unreachable = |reason: String| CliError::Unreachable {
        server: server.to_string(),
        reason,
    };
    let endpoint = ClientTls::from_env()
        .endpoint(server)
        .map_err(|e| match e {
            ClientTlsError::Transport(e) => CliError::Usage(format!(
                "{server} is not a valid server address ({})",
                root_cause(&e)
            )),
            e => CliError::Usage(e.to_string()),
        })?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true);
    match tokio::time::timeout(CONNECT_TIMEOUT, endpoint.connect()).await {
        Ok(Ok(channel)) => Ok(channel),
        Ok(Err(e)) => Err(match tls_failure(&e) {
            Some(failure) => CliError::Tls {
                server: server.to_string(),
                failure,
            },
            None => unreachable(root_cause(&e)),
        }),
        Err(_) => Err(unreachable("timed out".into())),
    }
}

impl Client {
    /// The clients of `channel`, sending `key` on every call.
    ///
    /// # Errors
    /// [`CliError::Usage`] for a key that cannot travel in a header.
    pub fn new(
        channel: Channel,
        server: &str,
        key: &ApiKey,
        command: &'static str,
    ) -> Result<Self, CliError> {
        let header = format!("Bearer {}", key.expose())
            .parse::<MetadataValue<Ascii>>()
            .map_err(|_| {
                CliError::Usage(format!(
                    "the API key from {} contains characters a key cannot have",
                    key.source
                ))
            })?;
        let auth = Auth { header };
        Ok(Client {
            server: server.to_string(),
            key_source: key.source.clone(),
            command,
            projects: ProjectServiceClient::with_interceptor(channel.clone(), auth.clone()),
            discussions: DiscussionServiceClient::with_interceptor(channel.clone(), auth.clone()),
            models: ModelServiceClient::with_interceptor(channel.clone(), auth.clone()),
            usage: UsageServiceClient::with_interceptor(channel, auth),
        })
    }

    /// Connects to `server` with `key`.
    ///
    /// # Errors
    /// As [`connect`] and [`Client::new`].
    pub async fn connect(
        server: &str,
        key: &ApiKey,
        command: &'static str,
    ) -> Result<Self, CliError> {
        Self::new(connect(server).await?, server, key, command)
    }

    /// Turns a failed `rpc`'s status into the CLI error of its class.
    pub fn error(&self, rpc: &'static str) -> impl Fn(Status) -> CliError + '_ {
        move |status| {
            from_status(
                &status,
                &CallContext {
                    server: &self.server,
                    key_source: &self.key_source,
                    command: self.command,
                    rpc,
                },
            )
        }
    }
}

/// The innermost cause of an error, which is the one that says what happened
/// ("Connection refused") rather than where ("transport error").
pub fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    let text = current.to_string();
    // "Connection refused (os error 111)" reads better without the errno.
    match text.find(" (os error") {
        Some(i) => text[..i].to_lowercase(),
        None => text,
    }
}
