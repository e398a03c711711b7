//! Which provider serves a model: aliases first, then the first provider with
//! a matching prefix, else the first catch-all.

use super::error::LlmError;
use super::provider::Provider;
use super::settings::{LlmSettings, ProviderSettings};

#[derive(Debug)]
pub(crate) struct Router {
    providers: Vec<Provider>,
}

/// The model to call, once routed.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub provider: Provider,
    /// Full model id after alias resolution (what logs and errors show).
    pub model_id: String,
    /// The id sent upstream (differs only with `strip_prefix`).
    pub upstream_id: String,
}

impl Router {
    /// # Errors
    /// `LlmError::Config` if no provider is configured or one is invalid.
    pub fn new(settings: &LlmSettings, http: &reqwest::Client) -> Result<Self, LlmError> {
        if settings.providers.is_empty() {
            return Err(LlmError::Config {
                reason: "no providers configured".into(),
            });
        }
        let providers = settings
            .providers
            .iter()
            .map(|p| Provider::new(p.clone(), http.clone()))
            .collect::<Result<_, _>>()?;
        Ok(Self { providers })
    }

    pub fn providers(&self) -> &[Provider] {
        &self.providers
    }

    /// # Errors
    /// `LlmError::UnknownProvider` when no provider takes the model.
    pub fn route(&self, settings: &LlmSettings, model: &str) -> Result<Route, LlmError> {
        let model_id = settings.resolve_alias(model);
        let settings_of: Vec<&ProviderSettings> =
            self.providers.iter().map(Provider::settings).collect();
        let index =
            route_index(&settings_of, &model_id).ok_or_else(|| LlmError::UnknownProvider {
                model: model_id.clone(),
            })?;
        let provider = self.providers[index].clone();
        let upstream_id = provider.settings().upstream_model_id(&model_id).to_owned();
        Ok(Route {
            provider,
            model_id,
            upstream_id,
        })
    }
}

/// Index of the provider for a full model id.
fn route_index(providers: &[&ProviderSettings], model_id: &str) -> Option<usize> {
    providers
        .iter()
        .position(|p| {
            p.models
                .iter()
                .any(|prefix| model_id.starts_with(prefix.as_str()))
        })
        .or_else(|| providers.iter().position(|p| p.models.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(name: &str, models: &[&str]) -> ProviderSettings {
        ProviderSettings {
            name: name.to_owned(),
            base_url: format!("http://{name}.invalid/v1"),
            models: models.iter().map(|m| (*m).to_owned()).collect(),
            ..ProviderSettings::default()
        }
    }

    fn router(providers: Vec<ProviderSettings>) -> Result<(LlmSettings, Router), LlmError> {
        let mut settings = LlmSettings {
            providers,
            ..LlmSettings::default()
        };
        settings
            .aliases
            .insert("gpt".into(), "openai/gpt-4o".into());
        let router = Router::new(&settings, &reqwest::Client::new())?;
        Ok((settings, router))
    }

    #[test]
    fn first_prefix_match_wins_then_first_catch_all() -> Result<(), LlmError> {
        let (settings, router) = router(vec![
            provider("any", &[]),
            provider("openai", &["openai/"]),
            provider("exact", &["anthropic/claude-sonnet-4"]),
            provider("later-any", &[]),
        ])?;
        let name = |m: &str| {
            router
                .route(&settings, m)
                .map(|r| r.provider.name().to_owned())
        };
        assert_eq!(name("openai/gpt-4o")?, "openai");
        assert_eq!(name("gpt")?, "openai");
        assert_eq!(name("anthropic/claude-sonnet-4")?, "exact");
        assert_eq!(name("meta/llama")?, "any");
        Ok(())
    }

    #[test]
    fn alias_is_resolved_and_prefix_optionally_stripped() -> Result<(), LlmError> {
        let mut openai = provider("openai", &["openai/"]);
        openai.strip_prefix = true;
        let (settings, router) = router(vec![openai])?;
        let route = router.route(&settings, "gpt")?;
        assert_eq!(route.model_id, "openai/gpt-4o");
        assert_eq!(route.upstream_id, "gpt-4o");
        Ok(())
    }

    #[test]
    fn no_match_and_no_catch_all_is_unknown_provider() -> Result<(), LlmError> {
        let (settings, router) = router(vec![provider("openai", &["openai/"])])?;
        assert_eq!(
            router.route(&settings, "meta/llama").err(),
            Some(LlmError::UnknownProvider {
                model: "meta/llama".into()
            })
        );
        Ok(())
    }

    #[test]
    fn bad_settings_are_config_errors() {
        let mut zero = provider("zero", &[]);
        zero.max_concurrency = Some(0);
        assert!(matches!(router(vec![zero]), Err(LlmError::Config { .. })));
        let mut url = provider("url", &[]);
        url.base_url = "not a url".into();
        assert!(matches!(router(vec![url]), Err(LlmError::Config { .. })));
        let mut key = provider("key", &[]);
        key.api_key = Some("line\nbreak".to_owned().into());
        let err = router(vec![key])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("api_key") && !err.contains("line"), "{err}");
        assert!(matches!(router(vec![]), Err(LlmError::Config { .. })));
    }
}
