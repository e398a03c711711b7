//! Placeholder with the agreed interface; replaced by the real model layer.
#![allow(missing_docs, dead_code)]

use std::collections::BTreeMap;

use futures::stream::BoxStream;
use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct LlmSettings {
    pub providers: Vec<ProviderSettings>,
    pub aliases: BTreeMap<String, String>,
    pub default_context_tokens: usize,
    pub context_tokens: BTreeMap<String, usize>,
}

impl Default for LlmSettings {
    fn default() -> Self {
        Self {
            providers: vec![ProviderSettings {
                name: "openrouter".into(),
                base_url: "https://openrouter.ai/api/v1".into(),
                api_key: None,
            }],
            aliases: BTreeMap::new(),
            default_context_tokens: 32_000,
            context_tokens: BTreeMap::new(),
        }
    }
}

impl LlmSettings {
    pub fn context_budget(&self, model: &str) -> usize {
        self.context_tokens
            .get(model)
            .copied()
            .unwrap_or(self.default_context_tokens)
    }
    pub fn resolve_alias(&self, model: &str) -> String {
        self.aliases
            .get(model)
            .cloned()
            .unwrap_or_else(|| model.to_owned())
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct ProviderSettings {
    pub name: String,
    pub base_url: String,
    pub api_key: Option<secrecy::SecretString>,
}

pub enum ChatRole {
    System,
    User,
    Assistant,
}
pub struct ChatMessage {
    pub role: ChatRole,
    pub content: String,
}
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    pub max_tokens: Option<u32>,
}
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_usd: f64,
}
pub enum ChatChunk {
    Delta(String),
    Usage(Usage),
}
#[derive(Debug, thiserror::Error, Clone)]
pub enum LlmError {
    #[error("not implemented")]
    Config,
}
#[derive(Clone)]
pub struct LlmClient {
    settings: std::sync::Arc<LlmSettings>,
}
pub struct ModelInfo {
    pub id: String,
    pub provider: String,
    pub name: String,
    pub context_length: u64,
}
impl LlmClient {
    pub fn new(settings: LlmSettings) -> Result<Self, LlmError> {
        Ok(Self {
            settings: std::sync::Arc::new(settings),
        })
    }
    pub fn settings(&self) -> &LlmSettings {
        &self.settings
    }
    pub fn stream_chat(
        &self,
        _req: ChatRequest,
    ) -> BoxStream<'static, Result<ChatChunk, LlmError>> {
        Box::pin(futures::stream::once(async { Err(LlmError::Config) }))
    }
    pub async fn list_models(&self) -> Vec<ModelInfo> {
        Vec::new()
    }
}
