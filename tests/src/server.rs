//! `TestServer`: the real moai server started in-process on `127.0.0.1:0`,
//! with a fresh database (SQLite in a temp dir, or a fresh PostgreSQL
//! database), the fake model upstream, and typed gRPC clients.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use moai_proto::v1::{
    discussion_service_client::DiscussionServiceClient, model_service_client::ModelServiceClient,
    project_service_client::ProjectServiceClient, usage_service_client::UsageServiceClient,
};
pub use moai_server::budget::Limits as BudgetLimits;
pub use moai_server::config::Limits;
use moai_server::config::Settings;
pub use moai_server::llm::ModelPrice;
use moai_server::llm::{LlmSettings, ProviderSettings};
use secrecy::SecretString;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::fake_llm::FakeLlm;

/// Key of principal "alice".
pub const ALICE_KEY: &str = "alice-test-key-0001";
/// Key of principal "bob".
pub const BOB_KEY: &str = "bob-test-key-0002";
/// Gateway key that may act for `x-moai-user` users.
pub const GATEWAY_KEY: &str = "gateway-test-key-0003";

/// Which database a test server uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite in the server's data dir.
    Sqlite,
    /// A fresh database on the PostgreSQL server named by `MOAI_TEST_POSTGRES_URL`.
    Postgres,
}

/// How to start a test server.
pub struct TestOptions {
    pub backend: Backend,
    pub limits: Limits,
    /// Reuse this data dir (and database URL) instead of fresh ones: a restart.
    pub reuse: Option<Reuse>,
    /// Adjust the model settings (timeouts, retries, budgets) before start.
    pub llm: Box<dyn FnOnce(&mut LlmSettings) + Send>,
    /// Configure user/gateway keys (true) or start keyless so a local key is generated (false).
    pub configured_keys: bool,
    /// Use this existing database (another replica's) instead of a fresh one.
    pub database_url: Option<String>,
    /// Last say over the settings (budgets, admins, prices).
    pub settings: Box<dyn FnOnce(&mut Settings) + Send>,
    /// Browser origins allowed to call over gRPC-Web (CORS).
    pub grpc_web_origins: Vec<String>,
    /// Serve TLS with these files (see [`crate::tls`]); `url` is then `https://`.
    pub tls: Option<moai_server::tls::TlsSettings>,
    /// Relay live events and stops through this Redis (replicas of one test share it).
    pub redis: Option<crate::redis::TestRedis>,
}

impl Default for TestOptions {
    fn default() -> Self {
        Self {
            backend: Backend::Sqlite,
            limits: Limits::default(),
            reuse: None,
            llm: Box::new(|_| {}),
            configured_keys: true,
            database_url: None,
            settings: Box::new(|_| {}),
            grpc_web_origins: Vec::new(),
            tls: None,
            redis: None,
        }
    }
}

/// What a stopped server leaves for the next one.
pub struct Reuse {
    pub data_dir: tempfile::TempDir,
    pub database_url: Option<String>,
    pub llm: FakeLlm,
}

/// A running server.
pub struct TestServer {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:<port>`
    pub url: String,
    /// The HTTP listener (OpenAI-compatible API, MCP, metrics): `http://127.0.0.1:<port>`.
    pub http_url: String,
    /// Alice's user key.
    pub key: String,
    /// Bob's user key.
    pub key_b: String,
    /// The gateway key.
    pub gateway_key: String,
    pub llm: FakeLlm,
    pub data_dir: tempfile::TempDir,
    pub database_url: Option<String>,
    /// Dropping it (with the server) stops the server too.
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), String>>>,
}

/// Client-side interceptor adding the bearer key (and, for a gateway, the user).
#[derive(Clone)]
pub struct KeyAuth {
    key: String,
    user: Option<String>,
}

impl KeyAuth {
    /// Authenticates with `key`, acting for `user` when given (gateway keys).
    pub fn new(key: &str, user: Option<&str>) -> Self {
        Self {
            key: key.to_owned(),
            user: user.map(str::to_owned),
        }
    }
}

impl tonic::service::Interceptor for KeyAuth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let bearer = format!("Bearer {}", self.key)
            .parse()
            .map_err(|_| tonic::Status::internal("key is not ASCII"))?;
        req.metadata_mut().insert("authorization", bearer);
        if let Some(user) = &self.user {
            let user = user
                .parse()
                .map_err(|_| tonic::Status::internal("user is not ASCII"))?;
            req.metadata_mut().insert("x-moai-user", user);
        }
        Ok(req)
    }
}

/// An authenticated channel.
pub type AuthChannel = InterceptedService<Channel, KeyAuth>;

/// Installs quiet logging, or verbose when `TEST_LOG` is set.
pub fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        moai_server::telemetry::init("info,moai_server=debug");
    }
}

/// The PostgreSQL admin URL for tests, when configured.
pub fn postgres_url() -> Option<String> {
    std::env::var("MOAI_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// Creates a fresh database on the test PostgreSQL server and returns its URL.
pub async fn fresh_postgres_database() -> String {
    use sqlx::Connection as _;
    let admin = postgres_url().expect("MOAI_TEST_POSTGRES_URL is set");
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&admin)
        .await
        .expect("connect to MOAI_TEST_POSTGRES_URL");
    let name = format!("moai_t_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create a test database");
    let _ = conn.close().await;
    replace_database(&admin, &name)
}

fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

impl TestServer {
    /// A fresh server on SQLite with the fake upstream.
    pub async fn spawn() -> Self {
        Self::spawn_with(TestOptions::default()).await
    }

    /// A fresh server on the given backend.
    pub async fn spawn_on(backend: Backend) -> Self {
        Self::spawn_with(TestOptions {
            backend,
            ..Default::default()
        })
        .await
    }

    /// A server started as `options` say.
    pub async fn spawn_with(options: TestOptions) -> Self {
        init_logs();
        let (data_dir, database_url, llm) = match options.reuse {
            Some(r) => (r.data_dir, r.database_url, r.llm),
            None => {
                let url = match (options.database_url, options.backend) {
                    (Some(url), _) => Some(url),
                    (None, Backend::Sqlite) => None,
                    (None, Backend::Postgres) => Some(fresh_postgres_database().await),
                };
                (
                    tempfile::tempdir().expect("temp data dir"),
                    url,
                    FakeLlm::start().await,
                )
            }
        };
        let mut settings = test_settings(
            data_dir.path(),
            database_url.clone(),
            &llm,
            options.limits,
            options.llm,
            options.configured_keys,
        );
        (options.settings)(&mut settings);
        settings.grpc_web_origins = options.grpc_web_origins;
        let scheme = if options.tls.is_some() {
            "https"
        } else {
            "http"
        };
        settings.tls = options.tls.unwrap_or_default();
        if let Some(redis) = options.redis {
            settings.redis_url = Some(SecretString::from(redis.url));
            settings.redis_key_prefix = redis.key_prefix;
        }
        let app = moai_server::Application::build(settings)
            .await
            .expect("the server starts");
        let addr = app.local_addr();
        let http_url = app
            .http_addr()
            .map(|a| format!("{scheme}://{a}"))
            .unwrap_or_default();
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            app.run_until(async move {
                let _ = stopped.await;
            })
            .await
            .map_err(|e| e.to_string())
        });
        Self {
            addr,
            url: format!("{scheme}://{addr}"),
            http_url,
            key: ALICE_KEY.to_owned(),
            key_b: BOB_KEY.to_owned(),
            gateway_key: GATEWAY_KEY.to_owned(),
            llm,
            data_dir,
            database_url,
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    /// Stops the server gracefully and hands back what a restart reuses.
    pub async fn stop(mut self) -> Reuse {
        self.shutdown().await;
        Reuse {
            data_dir: self.data_dir,
            database_url: self.database_url,
            llm: self.llm,
        }
    }

    async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            match tokio::time::timeout(Duration::from_secs(30), handle).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => panic!("server stopped with an error: {e}"),
                Ok(Err(e)) => panic!("server task panicked: {e}"),
                Err(_) => panic!("server did not stop within 30s"),
            }
        }
    }

    /// A plain channel to the server.
    pub async fn channel(&self) -> Channel {
        Endpoint::from_shared(self.url.clone())
            .expect("valid url")
            .connect()
            .await
            .expect("connect to the test server")
    }

    /// A channel that authenticates with `key`, acting for `user` when given.
    pub async fn auth_channel(&self, key: &str, user: Option<&str>) -> AuthChannel {
        InterceptedService::new(
            self.channel().await,
            KeyAuth {
                key: key.to_owned(),
                user: user.map(str::to_owned),
            },
        )
    }

    /// ProjectService as alice.
    pub async fn projects(&self) -> ProjectServiceClient<AuthChannel> {
        ProjectServiceClient::new(self.auth_channel(&self.key, None).await)
    }

    /// DiscussionService as alice.
    pub async fn discussions(&self) -> DiscussionServiceClient<AuthChannel> {
        DiscussionServiceClient::new(self.auth_channel(&self.key, None).await)
    }

    /// UsageService as alice.
    pub async fn usage(&self) -> UsageServiceClient<AuthChannel> {
        UsageServiceClient::new(self.auth_channel(&self.key, None).await)
    }

    /// ModelService as alice.
    pub async fn models(&self) -> ModelServiceClient<AuthChannel> {
        ModelServiceClient::new(self.auth_channel(&self.key, None).await)
    }
}

/// Settings of a test server: loopback port 0, the fake upstream as the only
/// provider, fast retries, and alice/bob/gateway keys.
pub fn test_settings(
    data_dir: &Path,
    database_url: Option<String>,
    llm: &FakeLlm,
    limits: Limits,
    adjust: Box<dyn FnOnce(&mut LlmSettings) + Send>,
    configured_keys: bool,
) -> Settings {
    let mut settings = Settings {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        http_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        data_dir: PathBuf::from(data_dir),
        database_url,
        limits: Limits {
            shutdown_grace_secs: 2,
            ..limits
        },
        ..Settings::default()
    };
    if configured_keys {
        settings
            .api_keys
            .insert("alice".into(), SecretString::from(ALICE_KEY.to_owned()));
        settings
            .api_keys
            .insert("bob".into(), SecretString::from(BOB_KEY.to_owned()));
        settings.gateway_keys.insert(
            "telegram".into(),
            SecretString::from(GATEWAY_KEY.to_owned()),
        );
    }
    let mut llm_settings = LlmSettings::default();
    let mut provider: ProviderSettings = llm_settings
        .providers
        .first()
        .cloned()
        .expect("a default provider");
    provider.name = "fake".into();
    provider.base_url = llm.base_url();
    provider.api_key = Some(SecretString::from("fake-upstream-key".to_owned()));
    // The fake lists only the models a test scripts or registers; tests of
    // the catalogue check turn it back on.
    provider.check_models = false;
    llm_settings.providers = vec![provider];
    llm_settings.retry.base_delay_ms = 20;
    llm_settings.retry.max_delay_ms = 2_000;
    llm_settings.timeouts.first_token_ms = 5_000;
    llm_settings.timeouts.idle_ms = 5_000;
    adjust(&mut llm_settings);
    settings.llm = llm_settings;
    settings
}

#[cfg(test)]
mod tests {
    use super::replace_database;

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            replace_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            replace_database("postgres://u@h/test?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(replace_database("postgres://u@h", "x"), "postgres://u@h/x");
    }
}
