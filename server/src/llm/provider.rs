//! One configured upstream: its async-openai client, HTTP transport and
//! adaptive concurrency limits, and the [`ModelInfo`] its `/models` lists.

use std::sync::Arc;
use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::middleware::ReqwestService;
use secrecy::ExposeSecret;
use tokio::time::Instant;
use tower::Layer;

use super::call_state::CallState;
use super::error::LlmError;
use super::limiter::Limits;
use super::retry::{Gate, RetryLayer};
use super::settings::{ModelPrice, ProviderSettings, RetrySettings};
use super::wire::{ModelList, StreamChunk, StreamRequest, WireModel};

/// One model a provider offers.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInfo {
    pub id: String,
    /// Name of the provider (from settings) that listed it.
    pub provider: String,
    /// Display name when the provider gives one (OpenRouter), else the id.
    pub name: String,
    /// Context window in tokens when the provider reports it, else 0.
    pub context_length: u64,
    /// Prices when the provider lists them (OpenRouter's `pricing`).
    pub price: Option<ModelPrice>,
}

/// Cheap to clone: everything heavy is shared.
#[derive(Clone)]
pub(crate) struct Provider {
    settings: Arc<ProviderSettings>,
    http: reqwest::Client,
    client: Client<OpenAIConfig>,
    limits: Arc<Limits>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.settings.name)
            .field("base_url", &self.settings.base_url)
            .finish_non_exhaustive()
    }
}

impl Provider {
    /// Checks the settings and builds the client.
    ///
    /// # Errors
    /// `LlmError::Config` for an unusable base URL, a key that cannot be sent
    /// as a header, or zero concurrency. The key never appears in the message.
    pub fn new(settings: ProviderSettings, http: reqwest::Client) -> Result<Self, LlmError> {
        let config_error = |reason: String| LlmError::Config {
            reason: format!("provider {:?}: {reason}", settings.name),
        };
        if settings.max_concurrency == Some(0) || settings.concurrency_ceiling == 0 {
            return Err(config_error(
                "max_concurrency and concurrency_ceiling must be at least 1".into(),
            ));
        }
        let base_url = settings.base_url.trim_end_matches('/').to_owned();
        match reqwest::Url::parse(&base_url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            _ => {
                return Err(config_error(format!(
                    "base_url {base_url:?} is not an http(s) URL"
                )));
            }
        }
        let key = settings
            .api_key
            .as_ref()
            .map(|k| k.expose_secret().to_owned())
            .unwrap_or_default();
        if reqwest::header::HeaderValue::from_str(&format!("Bearer {key}")).is_err() {
            return Err(config_error(
                "api_key contains characters not allowed in a header".into(),
            ));
        }
        // Explicit org/project: OpenAIConfig would otherwise pick up OPENAI_*
        // variables from the environment and send them to every provider.
        let config = OpenAIConfig::new()
            .with_api_base(base_url)
            .with_api_key(key)
            .with_org_id("")
            .with_project_id("");
        Ok(Self {
            limits: Arc::new(Limits::new(
                &settings.name,
                settings.concurrency_limit(),
                settings.limit_per_model,
            )),
            client: Client::build(http.clone(), config),
            http,
            settings: Arc::new(settings),
        })
    }

    pub fn name(&self) -> &str {
        &self.settings.name
    }

    pub fn settings(&self) -> &ProviderSettings {
        &self.settings
    }

    /// The provider's adaptive concurrency limits, shared by its calls.
    pub fn limits(&self) -> Arc<Limits> {
        self.limits.clone()
    }

    /// A client for one call: the shared one, with this call's retry layer.
    fn client_for_call(
        &self,
        retry: RetrySettings,
        state: Arc<CallState>,
        gate: Option<Gate>,
    ) -> Client<OpenAIConfig> {
        let service =
            RetryLayer::new(retry, state, gate).layer(ReqwestService::new(self.http.clone()));
        self.client.clone().with_http_service(service)
    }

    /// Sends the request; resolves once the response head is in (after any
    /// retries), yielding the parsed SSE chunks.
    pub async fn open_stream(
        &self,
        body: &StreamRequest,
        retry: RetrySettings,
        state: Arc<CallState>,
        gate: Option<Gate>,
        connect_timeout: Duration,
    ) -> Result<async_openai::types::stream::StreamResponse<StreamChunk>, LlmError> {
        let client = self.client_for_call(retry, state, gate);
        client
            .chat()
            .create_stream_byot::<&StreamRequest, StreamChunk>(body)
            .await
            .map_err(|e| LlmError::from_open(e, connect_timeout))
    }

    /// This provider's `/models`.
    #[tracing::instrument(skip_all, fields(provider = %self.settings.name))]
    pub async fn list_models(
        &self,
        retry: RetrySettings,
        connect_timeout: Duration,
    ) -> Result<Vec<ModelInfo>, LlmError> {
        // Listing is not a model call: it takes no concurrency slot.
        let client = self.client_for_call(retry, CallState::new(Instant::now()), None);
        let list: ModelList = client
            .models()
            .list_byot()
            .await
            .map_err(|e| LlmError::from_open(e, connect_timeout))?;
        let models = list
            .data
            .into_iter()
            .filter_map(|value| serde_json::from_value::<WireModel>(value).ok())
            .filter(|m| !m.id.is_empty())
            .map(|m| {
                let id = self.settings.full_model_id(&m.id);
                ModelInfo {
                    name: m.name.unwrap_or_else(|| id.clone()),
                    context_length: m.context_length.unwrap_or(0),
                    price: m.pricing.as_ref().and_then(|p| p.per_million()),
                    provider: self.settings.name.clone(),
                    id,
                }
            })
            .collect();
        Ok(models)
    }
}
