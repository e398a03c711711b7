//! Typed settings for the model-call layer, read from the `[llm]` table of the
//! server's TOML file. Every field has a default, so an empty table (or none at
//! all) gives a working OpenRouter setup once the lead fills in the key.

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

/// Base URL of the default provider.
pub const OPENROUTER_BASE_URL: &str = "https://openrouter.ai/api/v1";

/// Where a provider's adaptive concurrency limit starts: high enough that a
/// shared server does not queue its users behind each other by itself.
pub const DEFAULT_CONCURRENCY_CEILING: usize = 1024;

/// Everything the model-call layer needs to know.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct LlmSettings {
    /// Providers in routing order; see [`ProviderSettings::models`].
    pub providers: Vec<ProviderSettings>,
    /// Short name -> full model id, e.g. `"gpt" -> "openai/gpt-4o"`.
    pub aliases: BTreeMap<String, String>,
    pub timeouts: Timeouts,
    pub retry: RetrySettings,
    /// Context budget in tokens for a model not listed in `context_tokens`.
    pub default_context_tokens: usize,
    /// Context budget in tokens per full model id.
    pub context_tokens: BTreeMap<String, usize>,
    /// How long the merged `/models` listing is cached, in seconds (0 = never).
    pub models_cache_secs: u64,
    /// `[llm.prices."vendor/model"]`: USD per million tokens; wins over
    /// the provider catalogue's prices.
    pub prices: BTreeMap<String, ModelPrice>,
}

/// What a model's tokens cost, in USD per million.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ModelPrice {
    pub prompt_per_million: f64,
    pub completion_per_million: f64,
}

impl ModelPrice {
    /// The cost of `prompt` and `completion` tokens.
    pub fn cost(&self, prompt: u64, completion: u64) -> f64 {
        // Token counts are far below 2^52: the conversion is exact.
        #[allow(clippy::cast_precision_loss)]
        let (p, c) = (prompt as f64, completion as f64);
        (p * self.prompt_per_million + c * self.completion_per_million) / 1_000_000.0
    }

    /// Both prices finite and not negative.
    pub fn is_valid(&self) -> bool {
        [self.prompt_per_million, self.completion_per_million]
            .iter()
            .all(|v| v.is_finite() && *v >= 0.0)
    }
}

impl Default for LlmSettings {
    fn default() -> Self {
        Self {
            providers: vec![ProviderSettings::default()],
            aliases: BTreeMap::new(),
            timeouts: Timeouts::default(),
            retry: RetrySettings::default(),
            default_context_tokens: 32_000,
            context_tokens: BTreeMap::new(),
            models_cache_secs: 300,
            prices: BTreeMap::new(),
        }
    }
}

impl LlmSettings {
    /// The context budget (in tokens) for `model`, alias or full id.
    pub fn context_budget(&self, model: &str) -> usize {
        let resolved = self.resolve_alias(model);
        self.context_tokens
            .get(&resolved)
            .or_else(|| self.context_tokens.get(model))
            .copied()
            .unwrap_or(self.default_context_tokens)
    }

    /// The full model id for `model`: its alias target, or `model` itself.
    pub fn resolve_alias(&self, model: &str) -> String {
        self.aliases
            .get(model)
            .cloned()
            .unwrap_or_else(|| model.to_owned())
    }
}

/// One OpenAI-compatible upstream (OpenRouter, OpenAI, Ollama, vLLM, a fake).
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct ProviderSettings {
    /// Name used in logs and in `ModelInfo::provider`.
    pub name: String,
    /// API base, e.g. `https://openrouter.ai/api/v1`; `/chat/completions` and
    /// `/models` are appended to it.
    pub base_url: String,
    /// Sent as `authorization: Bearer <key>`; none for keyless local servers.
    pub api_key: Option<SecretString>,
    /// Model-id prefixes routed to this provider (`"openai/"`, or an exact id,
    /// which is its own prefix); empty = catch-all.
    pub models: Vec<String>,
    /// A hard cap on the streams open to this provider at once. Unset (the
    /// default), only the adaptive limit applies: it starts at
    /// `concurrency_ceiling`, is cut when the provider answers 429/503 and
    /// grows back on successes.
    pub max_concurrency: Option<usize>,
    /// Where the adaptive concurrency limit starts, and the most it grows to.
    pub concurrency_ceiling: usize,
    /// Keep an adaptive limit per model too (for providers that limit each
    /// model on its own): a 429 then slows only the model that got it.
    pub limit_per_model: bool,
    /// Check the model ids of projects against this provider's `/models`;
    /// off for servers whose listing is incomplete.
    pub check_models: bool,
    /// Send the model id without the matched prefix (e.g. `openai/gpt-4o` ->
    /// `gpt-4o` for OpenAI itself). Default false.
    pub strip_prefix: bool,
}

impl Default for ProviderSettings {
    fn default() -> Self {
        Self {
            name: "openrouter".to_owned(),
            base_url: OPENROUTER_BASE_URL.to_owned(),
            api_key: None,
            models: Vec::new(),
            max_concurrency: None,
            concurrency_ceiling: DEFAULT_CONCURRENCY_CEILING,
            limit_per_model: false,
            check_models: true,
            strip_prefix: false,
        }
    }
}

impl ProviderSettings {
    /// The most streams the adaptive limit may allow: the ceiling, or the
    /// hard cap when that is lower.
    pub fn concurrency_limit(&self) -> usize {
        self.max_concurrency
            .map_or(self.concurrency_ceiling, |cap| {
                cap.min(self.concurrency_ceiling)
            })
    }

    /// The full model id for an id this provider lists: with `strip_prefix`,
    /// its first prefix is put back (`llama3` -> `ollama/llama3`), so that
    /// what `/models` shows routes back here.
    pub fn full_model_id(&self, upstream_id: &str) -> String {
        match self.models.first() {
            Some(prefix)
                if self.strip_prefix
                    && !self
                        .models
                        .iter()
                        .any(|p| upstream_id.starts_with(p.as_str())) =>
            {
                format!("{prefix}{upstream_id}")
            }
            _ => upstream_id.to_owned(),
        }
    }

    /// The model id to send to this provider for the full id `model_id`.
    pub fn upstream_model_id<'a>(&self, model_id: &'a str) -> &'a str {
        if !self.strip_prefix {
            return model_id;
        }
        self.models
            .iter()
            .filter_map(|prefix| model_id.strip_prefix(prefix.as_str()))
            .find(|rest| !rest.is_empty())
            .unwrap_or(model_id)
    }
}

/// Time limits of one model call, in milliseconds.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Timeouts {
    /// TCP/TLS connect.
    pub connect_ms: u64,
    /// From sending a request (each retry attempt anew) to the first token,
    /// of the answer or of a reasoning model's thinking.
    pub first_token_ms: u64,
    /// Longest silence between two chunks once text flows.
    pub idle_ms: u64,
    /// Whole call, retries included (not the wait for a concurrency slot).
    pub total_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect_ms: 10_000,
            // Reasoning models may think for minutes, some without streaming it.
            first_token_ms: 180_000,
            idle_ms: 60_000,
            total_ms: 900_000,
        }
    }
}

/// Longest wait any setting can ask for (30 days): larger values are clamped
/// so that deadline arithmetic cannot overflow.
pub(crate) const MAX_WAIT_MS: u64 = 30 * 24 * 3600 * 1000;

/// `ms` as a duration, clamped to [`MAX_WAIT_MS`].
pub(crate) fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms.min(MAX_WAIT_MS))
}

impl Timeouts {
    pub fn connect(&self) -> Duration {
        millis(self.connect_ms)
    }
    pub fn first_token(&self) -> Duration {
        millis(self.first_token_ms)
    }
    pub fn idle(&self) -> Duration {
        millis(self.idle_ms)
    }
    pub fn total(&self) -> Duration {
        millis(self.total_ms)
    }

    /// # Errors
    /// The name of the first limit that is zero (which would fail every call).
    pub(crate) fn check(&self) -> Result<(), &'static str> {
        [
            ("timeouts.connect_ms", self.connect_ms),
            ("timeouts.first_token_ms", self.first_token_ms),
            ("timeouts.idle_ms", self.idle_ms),
            ("timeouts.total_ms", self.total_ms),
        ]
        .into_iter()
        .find(|(_, ms)| *ms == 0)
        .map_or(Ok(()), |(name, _)| Err(name))
    }
}

/// Retries of connect errors, HTTP 429 and 5xx before the first token.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct RetrySettings {
    /// Extra attempts after the first one.
    pub max_retries: u32,
    /// Backoff before the first retry; doubles each time.
    pub base_delay_ms: u64,
    /// No wait is longer than this, `Retry-After` included.
    pub max_delay_ms: u64,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            max_retries: 3,
            base_delay_ms: 250,
            max_delay_ms: 10_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_toml_gives_the_defaults() -> Result<(), toml::de::Error> {
        let settings: LlmSettings = toml::from_str("")?;
        assert_eq!(settings.providers.len(), 1);
        assert_eq!(settings.providers[0].name, "openrouter");
        assert_eq!(settings.providers[0].base_url, OPENROUTER_BASE_URL);
        assert_eq!(settings.providers[0].max_concurrency, None);
        assert_eq!(settings.providers[0].concurrency_limit(), 1024);
        assert!(settings.providers[0].check_models);
        assert_eq!(settings.timeouts, Timeouts::default());
        assert_eq!(settings.timeouts.first_token_ms, 180_000);
        assert_eq!(settings.timeouts.total_ms, 900_000);
        assert_eq!(settings.retry, RetrySettings::default());
        assert_eq!(settings.default_context_tokens, 32_000);
        assert_eq!(settings.models_cache_secs, 300);
        Ok(())
    }

    #[test]
    fn partial_toml_keeps_defaults_for_missing_fields() -> Result<(), toml::de::Error> {
        let settings: LlmSettings = toml::from_str(
            r#"
            default_context_tokens = 8000
            [timeouts]
            first_token_ms = 500
            [aliases]
            gpt = "openai/gpt-4o"
            [context_tokens]
            "openai/gpt-4o" = 128000
            [[providers]]
            name = "openai"
            base_url = "https://api.openai.com/v1"
            api_key = "sk-test"
            models = ["openai/"]
            strip_prefix = true
            max_concurrency = 8
            check_models = false
            "#,
        )?;
        assert_eq!(settings.timeouts.first_token_ms, 500);
        assert_eq!(settings.timeouts.idle_ms, 60_000);
        assert_eq!(settings.providers[0].max_concurrency, Some(8));
        assert_eq!(settings.providers[0].concurrency_limit(), 8);
        assert!(!settings.providers[0].check_models);
        assert_eq!(settings.context_budget("gpt"), 128_000);
        assert_eq!(settings.context_budget("openai/gpt-4o"), 128_000);
        assert_eq!(settings.context_budget("other"), 8000);
        assert_eq!(
            settings.providers[0].full_model_id("gpt-4o"),
            "openai/gpt-4o"
        );
        assert_eq!(
            settings.providers[0].full_model_id("openai/gpt-4o"),
            "openai/gpt-4o"
        );
        assert_eq!(
            settings.providers[0].upstream_model_id("openai/gpt-4o"),
            "gpt-4o"
        );
        // The key is redacted in Debug output.
        assert!(!format!("{settings:?}").contains("sk-test"));
        Ok(())
    }

    #[test]
    fn huge_limits_are_clamped_and_zero_limits_rejected() {
        let huge = Timeouts {
            total_ms: u64::MAX,
            ..Timeouts::default()
        };
        assert_eq!(huge.total(), Duration::from_millis(MAX_WAIT_MS));
        // Deadline arithmetic stays in range.
        let _ = tokio::time::Instant::now() + huge.total();
        assert_eq!(huge.check(), Ok(()));
        let zero = Timeouts {
            idle_ms: 0,
            ..Timeouts::default()
        };
        assert_eq!(zero.check(), Err("timeouts.idle_ms"));
    }

    #[test]
    fn aliases_resolve_one_level() {
        let mut settings = LlmSettings::default();
        settings
            .aliases
            .insert("gpt".to_owned(), "openai/gpt-4o".to_owned());
        assert_eq!(settings.resolve_alias("gpt"), "openai/gpt-4o");
        assert_eq!(settings.resolve_alias("openai/gpt-4o"), "openai/gpt-4o");
    }
}
