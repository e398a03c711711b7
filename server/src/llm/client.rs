//! `LlmClient`: the one handle the rest of the server uses for model calls.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;

use super::chat::{ChatChunk, ChatRequest};
use super::check::{ModelCheck, check};
use super::error::LlmError;
use super::models::ModelCache;
use super::provider::ModelInfo;
use super::router::Router;
use super::settings::LlmSettings;
use super::stream::chat_stream;

/// Cheap to clone (an `Arc` inside); one per server.
#[derive(Clone)]
pub struct LlmClient {
    inner: Arc<Inner>,
}

struct Inner {
    settings: LlmSettings,
    router: Router,
    models: ModelCache,
}

impl std::fmt::Debug for LlmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self
            .inner
            .router
            .providers()
            .iter()
            .map(|p| p.name())
            .collect();
        f.debug_struct("LlmClient")
            .field("providers", &names)
            .finish_non_exhaustive()
    }
}

impl LlmClient {
    /// Builds the HTTP client and one async-openai client per provider.
    ///
    /// # Errors
    /// `LlmError::Config` when there is no provider, a base URL is not an
    /// http(s) URL, a key cannot be sent as a header, or a concurrency limit
    /// or a timeout is zero.
    pub fn new(settings: LlmSettings) -> Result<Self, LlmError> {
        settings.timeouts.check().map_err(|name| LlmError::Config {
            reason: format!("{name} must be more than 0"),
        })?;
        // reqwest's rustls has no provider of its own in this build: make
        // sure ring is installed, whoever builds the client (it is idempotent).
        moai_proto::tls::install_crypto_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(settings.timeouts.connect())
            .user_agent(concat!("moai/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| LlmError::Config {
                reason: format!("cannot build the HTTP client: {e}"),
            })?;
        let router = Router::new(&settings, &http)?;
        let models = ModelCache::new(Duration::from_secs(settings.models_cache_secs));
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                router,
                models,
            }),
        })
    }

    pub fn settings(&self) -> &LlmSettings {
        &self.inner.settings
    }

    /// The name of the provider that would serve `model` (alias or full id).
    ///
    /// # Errors
    /// `LlmError::UnknownProvider` when no provider takes it.
    pub fn provider_for(&self, model: &str) -> Result<String, LlmError> {
        self.inner
            .router
            .route(&self.inner.settings, model)
            .map(|route| route.provider.name().to_owned())
    }

    /// Starts a streamed chat completion.
    ///
    /// The stream yields `Delta` chunks as text arrives and one `Usage` chunk
    /// when the provider reports usage, then ends; a terminal `Err` ends it
    /// (text already yielded stays valid). Nothing is sent until the stream is
    /// first polled; it then waits for a free slot of the provider (not
    /// counted against the timeouts), which it holds until the stream ends or
    /// is dropped. Dropping the stream drops the upstream request at once.
    pub fn stream_chat(&self, req: ChatRequest) -> BoxStream<'static, Result<ChatChunk, LlmError>> {
        let settings = &self.inner.settings;
        match self.inner.router.route(settings, &req.model) {
            Ok(route) => chat_stream(route, req, settings.timeouts, settings.retry),
            Err(error) => {
                tracing::warn!(model = %req.model, %error, "model call not routed");
                futures::stream::once(futures::future::ready(Err(error))).boxed()
            }
        }
    }

    /// Checks model ids (aliases allowed) against the providers' cached
    /// `/models`, except at providers with `check_models = false`.
    pub async fn check_models(&self, ids: &[String]) -> ModelCheck {
        let inner = &self.inner;
        let needed = ids.iter().any(|id| {
            inner
                .router
                .route(&inner.settings, id)
                .map_or(true, |r| r.provider.settings().check_models)
        });
        if !needed {
            return ModelCheck::default();
        }
        let catalogue = inner.models.catalogue(&inner.router, &inner.settings).await;
        check(ids, &catalogue, &inner.router, &inner.settings)
    }

    /// The adaptive concurrency limit of provider `name` right now (its own
    /// window, not the per-model ones); `None` for an unknown provider.
    pub fn concurrency_limit(&self, name: &str) -> Option<usize> {
        self.inner
            .router
            .providers()
            .iter()
            .find(|p| p.name() == name)
            .map(|p| p.limits().limit())
    }

    /// Every provider's `/models`, merged, sorted by id (one entry per id),
    /// cached for `models_cache_secs`. A provider that fails is left out
    /// (logged at warn) and the call still succeeds.
    pub async fn list_models(&self) -> Vec<ModelInfo> {
        self.inner
            .models
            .get(&self.inner.router, &self.inner.settings)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_timeout_is_a_config_error_naming_it() {
        let mut settings = LlmSettings::default();
        settings.timeouts.first_token_ms = 0;
        let error = LlmClient::new(settings).err().map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("invalid model settings: timeouts.first_token_ms must be more than 0")
        );
    }

    #[test]
    fn default_settings_build_and_route_everything_to_openrouter() -> Result<(), LlmError> {
        let llm = LlmClient::new(LlmSettings::default())?;
        assert_eq!(llm.provider_for("anything/at-all")?, "openrouter");
        Ok(())
    }
}
