//! The application: binds, reports its real address, serves until told to stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use moai_proto::v1::{
    discussion_service_server::DiscussionServiceServer, model_service_server::ModelServiceServer,
    project_service_server::ProjectServiceServer, usage_service_server::UsageServiceServer,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::api::{DiscussionApi, ModelApi, ProjectApi, UsageApi};
use crate::auth::{AuthInterceptor, KeyRing};
use crate::budget::Budget;
use crate::config::Settings;
use crate::engine::Engine;
use crate::llm::LlmClient;
use crate::store::{Backend, Store};
use crate::tls::{ServerTls, TlsError};

/// Why the server could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    #[error(transparent)]
    Budget(#[from] crate::budget::BudgetConfigError),
    #[error("model providers")]
    Llm(#[from] crate::llm::LlmError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("reflection")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("recovering interrupted runs")]
    Recovery(#[source] crate::engine::EngineError),
    #[error("transport")]
    Transport(#[from] tonic::transport::Error),
    #[error("HTTP listener: {0}")]
    Http(std::io::Error),
    #[error("TLS")]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Relay(#[from] crate::relay::RelayError),
}

/// A bound, ready server.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    engine: Engine,
    store: Store,
    keys: Arc<KeyRing>,
    tls: Option<Arc<ServerTls>>,
    settings: Settings,
    /// The HTTP listener, unless `http_listen` is `off`.
    http: Option<(TcpListener, SocketAddr)>,
}

impl Application {
    /// Opens the store (applying migrations and recovering interrupted runs),
    /// prepares keys and providers, and binds the listener.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let url = match &settings.database_url {
            Some(url) => url.clone(),
            None => Store::default_sqlite_url(&settings.data_dir)?,
        };
        settings.budgets.validate(settings.gateway_keys.keys())?;
        moai_proto::tls::install_crypto_provider();
        let tls = if settings.tls.enabled() {
            Some(Arc::new(ServerTls::load(&settings.tls)?))
        } else {
            None
        };
        let store = Store::connect(&url).await?;
        let keys = Arc::new(KeyRing::from_settings(&settings)?);
        let llm = LlmClient::new(settings.llm.clone())?;
        let scale = scale_out(&settings, &store, &url).await?;
        let budget = Budget::new(
            settings.budgets.clone(),
            settings.admin_principals.clone(),
            store.clone(),
            llm.clone(),
        );
        let engine =
            Engine::with_scale_out(store.clone(), llm, settings.limits.clone(), scale, budget);
        let recovered = engine
            .recover(store.backend() == Backend::Sqlite)
            .await
            .map_err(StartupError::Recovery)?;
        if recovered > 0 {
            tracing::warn!(recovered, "marked runs of a previous server INTERRUPTED");
        }
        let listener =
            TcpListener::bind(settings.listen)
                .await
                .map_err(|source| StartupError::Bind {
                    addr: settings.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| StartupError::Bind {
            addr: settings.listen,
            source,
        })?;
        if let Some(warning) = crate::tls::plaintext_warning(addr, tls.is_some()) {
            tracing::warn!("{warning}");
        }
        let http = match settings.http_listen {
            Some(http_addr) => {
                let bind_err = |source| StartupError::Bind {
                    addr: http_addr,
                    source,
                };
                let http = TcpListener::bind(http_addr).await.map_err(bind_err)?;
                let bound = http.local_addr().map_err(bind_err)?;
                Some((http, bound))
            }
            None => None,
        };
        if let Some((_, http_addr)) = &http
            && let Some(warning) = crate::tls::plaintext_warning(*http_addr, tls.is_some())
        {
            tracing::warn!("{warning}");
        }
        Ok(Self {
            listener,
            addr,
            engine,
            store,
            keys,
            tls,
            settings,
            http,
        })
    }

    /// The address the HTTP listener bound, unless it is off.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(|(_, addr)| *addr)
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` completes, then stops accepting, lets runs and
    /// calls finish within the grace period, and closes the store.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartupError> {
        let Self {
            listener,
            addr,
            engine,
            store,
            keys,
            tls,
            settings,
            http,
        } = self;
        let (health, health_service) = tonic_health::server::health_reporter();
        store.ping().await?;
        health
            .set_serving::<ProjectServiceServer<ProjectApi>>()
            .await;
        health
            .set_serving::<DiscussionServiceServer<DiscussionApi>>()
            .await;
        health.set_serving::<ModelServiceServer<ModelApi>>().await;
        health.set_serving::<UsageServiceServer<UsageApi>>().await;
        health
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;

        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(moai_proto::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(moai_proto::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;

        let metrics = crate::metrics::install();
        let http_keys = keys.clone();
        let auth = AuthInterceptor::new(keys);
        let projects = ProjectServiceServer::new(ProjectApi::new(engine.clone()));
        let discussions = DiscussionServiceServer::new(DiscussionApi::new(engine.clone()));
        let models = ModelServiceServer::new(ModelApi::new(engine.llm().clone()));
        let usage = UsageServiceServer::new(UsageApi::new(engine.budget().clone()));

        let stop = CancellationToken::new();
        let sweeper = tokio::spawn(sweep_lapsed_runs(
            engine.clone(),
            store.backend(),
            settings.limits.run_lease(),
            stop.clone(),
        ));
        let stop_listeners = engine.stops().listen(engine.stop_target(), stop.clone());
        let grace = settings.limits.shutdown_grace();
        let draining = {
            let stop = stop.clone();
            let engine = engine.clone();
            let health = health.clone();
            tokio::spawn(async move {
                tokio::select! {
                    () = shutdown => {}
                    // The server stopped on its own (a transport error): drain anyway.
                    () = stop.cancelled() => {}
                }
                tracing::info!(
                    "shutting down: no new calls; runs get {}s to finish",
                    grace.as_secs()
                );
                health
                    .set_service_status("", tonic_health::ServingStatus::NotServing)
                    .await;
                stop.cancel();
                engine.shutdown(grace).await;
            })
        };

        if let Some(tls) = &tls {
            tokio::spawn(crate::tls::reload_on_sighup(tls.clone(), stop.clone()));
        }
        let http_server = http.map(|(listener, http_addr)| {
            let state = crate::http::HttpState {
                engine: engine.clone(),
                keys: http_keys,
                metrics,
            };
            let router = crate::http::router(state, &stop);
            tracing::info!(%http_addr, tls = tls.is_some(), "moai HTTP listener (OpenAI-compatible API, MCP, metrics)");
            tokio::spawn(crate::http::serve(
                listener,
                tls.clone(),
                router,
                stop.clone(),
            ))
        });
        tracing::info!(%addr, tls = tls.is_some(), "moai server listening");
        let router = Server::builder()
            // gRPC-Web (HTTP/1.1 too), for browsers; CORS allows only the listed origins.
            .accept_http1(true)
            .layer(
                tower::ServiceBuilder::new()
                    .layer(crate::api::grpc_web_cors(&settings.grpc_web_origins))
                    .layer(tonic_web::GrpcWebLayer::new())
                    .layer(crate::metrics::grpc::GrpcMetricsLayer),
            )
            .trace_fn(|req| tracing::info_span!("rpc", path = %req.uri().path(), principal = tracing::field::Empty))
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(InterceptedService::new(projects, auth.clone()))
            .add_service(InterceptedService::new(discussions, auth.clone()))
            .add_service(InterceptedService::new(models, auth.clone()))
            .add_service(InterceptedService::new(usage, auth));
        let served = match tls {
            Some(tls) => {
                let incoming = crate::tls::accept_tls(listener, tls, stop.clone());
                router
                    .serve_with_incoming_shutdown(incoming, stop.clone().cancelled_owned())
                    .await
            }
            None => {
                router
                    .serve_with_incoming_shutdown(
                        TcpIncoming::from(listener).with_nodelay(Some(true)),
                        stop.clone().cancelled_owned(),
                    )
                    .await
            }
        };
        stop.cancel();
        let http_served = match http_server {
            Some(task) => task.await.unwrap_or(Ok(())),
            None => Ok(()),
        };
        let _ = draining.await;
        sweeper.abort();
        for listener in stop_listeners {
            listener.abort();
        }
        if let Some(relay) = engine.relay() {
            relay.close();
        }
        store.close().await;
        tracing::info!("moai server stopped");
        served.map_err(StartupError::from)?;
        http_served.map_err(StartupError::Http)
    }
}

/// Redis (when configured) and the way stops travel between replicas:
/// through Redis, else PostgreSQL's NOTIFY, else nowhere (one node).
async fn scale_out(
    settings: &Settings,
    store: &Store,
    database_url: &str,
) -> Result<crate::engine::ScaleOut, StartupError> {
    use crate::relay::stop::StopChannel;
    use crate::relay::{Relay, RelaySettings};
    let relay = match &settings.redis_url {
        Some(url) => {
            let relay = Relay::new(&RelaySettings {
                url: url.clone(),
                key_prefix: settings.redis_key_prefix.clone(),
                ca_cert: settings.redis_ca_cert.clone(),
                readers: 4,
            })?;
            match relay.ping().await {
                Ok(()) => tracing::info!("relaying live events and stops through Redis"),
                Err(e) => tracing::warn!(
                    error = %e,
                    "Redis does not answer yet; until it does, watchers on other replicas read the store"
                ),
            }
            Some(relay)
        }
        None => None,
    };
    let stops = match (&relay, store.backend()) {
        (Some(relay), _) => StopChannel::Redis(relay.clone()),
        (None, Backend::Postgres) => StopChannel::Postgres {
            store: store.clone(),
            url: database_url.to_owned(),
        },
        (None, Backend::Sqlite) => StopChannel::Local,
    };
    Ok(crate::engine::ScaleOut { relay, stops })
}

/// On a shared database, periodically interrupts runs whose replica died.
async fn sweep_lapsed_runs(
    engine: Engine,
    backend: Backend,
    lease: std::time::Duration,
    stop: CancellationToken,
) {
    if backend != Backend::Postgres {
        return;
    }
    let mut tick = tokio::time::interval(lease);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {
                if let Err(e) = engine.recover(false).await {
                    tracing::warn!(error = %e, "lapsed-run sweep failed");
                }
            }
        }
    }
}
