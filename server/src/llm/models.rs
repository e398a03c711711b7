//! The merged, cached `/models` listing of all providers.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use super::provider::ModelInfo;
use super::router::Router;
use super::settings::LlmSettings;

/// A listing missing a provider is kept at most this long, so a provider that
/// was down briefly reappears soon.
const PARTIAL_TTL: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub(crate) struct ModelCache {
    ttl: Duration,
    /// Held across a refresh, so concurrent callers share one round of requests.
    entry: Mutex<Option<Cached>>,
}

#[derive(Debug)]
struct Cached {
    fetched: Instant,
    ttl: Duration,
    models: Vec<ModelInfo>,
}

impl ModelCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entry: Mutex::new(None),
        }
    }

    pub async fn get(&self, router: &Router, settings: &LlmSettings) -> Vec<ModelInfo> {
        let mut entry = self.entry.lock().await;
        if let Some(cached) = entry.as_ref()
            && cached.fetched.elapsed() < cached.ttl
        {
            return cached.models.clone();
        }
        let (models, complete) = fetch_all(router, settings).await;
        let ttl = if complete {
            self.ttl
        } else {
            self.ttl.min(PARTIAL_TTL)
        };
        *entry = (!models.is_empty() && !ttl.is_zero()).then(|| Cached {
            fetched: Instant::now(),
            ttl,
            models: models.clone(),
        });
        models
    }
}

/// Every provider's listing, merged: sorted by id, one entry per id (the
/// earliest provider in settings order wins). `complete` is false when a
/// provider failed; it is logged and left out.
async fn fetch_all(router: &Router, settings: &LlmSettings) -> (Vec<ModelInfo>, bool) {
    // Listing is not a model call: bound it by the first-token limit.
    let limit = settings.timeouts.first_token();
    let calls = router
        .providers()
        .iter()
        .enumerate()
        .map(|(index, provider)| async move {
            let listed = tokio::time::timeout(
                limit,
                provider.list_models(settings.retry, settings.timeouts.connect()),
            )
            .await;
            match listed {
                Ok(Ok(models)) => Some((index, models)),
                Ok(Err(error)) => {
                    tracing::warn!(provider = provider.name(), %error, "listing models failed");
                    None
                }
                Err(_) => {
                    tracing::warn!(provider = provider.name(), "listing models timed out");
                    None
                }
            }
        });
    let results = futures::future::join_all(calls).await;
    let complete = results.iter().all(Option::is_some);
    let mut all: Vec<(usize, ModelInfo)> = results
        .into_iter()
        .flatten()
        .flat_map(|(index, models)| models.into_iter().map(move |m| (index, m)))
        .collect();
    all.sort_by(|(ia, a), (ib, b)| a.id.cmp(&b.id).then(ia.cmp(ib)));
    all.dedup_by(|(_, later), (_, kept)| later.id == kept.id);
    (all.into_iter().map(|(_, m)| m).collect(), complete)
}
