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
    catalogue: Catalogue,
}

/// What the providers offer, and which of them could not say.
#[derive(Clone, Debug, Default)]
pub(crate) struct Catalogue {
    pub models: Vec<ModelInfo>,
    /// Providers whose `/models` failed (or listed nothing).
    pub unlisted: Vec<String>,
}

impl ModelCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entry: Mutex::new(None),
        }
    }

    pub async fn get(&self, router: &Router, settings: &LlmSettings) -> Vec<ModelInfo> {
        self.catalogue(router, settings).await.models
    }

    /// The listing with the providers missing from it.
    pub async fn catalogue(&self, router: &Router, settings: &LlmSettings) -> Catalogue {
        let mut entry = self.entry.lock().await;
        if let Some(cached) = entry.as_ref()
            && cached.fetched.elapsed() < cached.ttl
        {
            return cached.catalogue.clone();
        }
        let catalogue = fetch_all(router, settings).await;
        let ttl = if catalogue.unlisted.is_empty() {
            self.ttl
        } else {
            self.ttl.min(PARTIAL_TTL)
        };
        *entry = (!catalogue.models.is_empty() && !ttl.is_zero()).then(|| Cached {
            fetched: Instant::now(),
            ttl,
            catalogue: catalogue.clone(),
        });
        catalogue
    }
}

/// Every provider's listing, merged: sorted by id, one entry per id (the
/// earliest provider in settings order wins). A provider that failed is
/// logged, left out and named in `unlisted`.
async fn fetch_all(router: &Router, settings: &LlmSettings) -> Catalogue {
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
    let unlisted = router
        .providers()
        .iter()
        .zip(&results)
        .filter(|(_, listed)| listed.as_ref().is_none_or(|(_, models)| models.is_empty()))
        .map(|(p, _)| p.name().to_owned())
        .collect();
    let mut all: Vec<(usize, ModelInfo)> = results
        .into_iter()
        .flatten()
        .flat_map(|(index, models)| models.into_iter().map(move |m| (index, m)))
        .collect();
    all.sort_by(|(ia, a), (ib, b)| a.id.cmp(&b.id).then(ia.cmp(ib)));
    all.dedup_by(|(_, later), (_, kept)| later.id == kept.id);
    Catalogue {
        models: all.into_iter().map(|(_, m)| m).collect(),
        unlisted,
    }
}
