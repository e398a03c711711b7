//! Prometheus metrics: their names, the one process-wide recorder, and the
//! label values. Labels carry only bounded values (model ids and provider
//! names from configuration, failure reasons, gRPC methods and codes), never
//! user text or discussion ids.

pub mod grpc;

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::store::MessageRecord;

/// Histogram: time from the request to the first token of an answer, by model and provider.
pub const MODEL_TIME_TO_FIRST_TOKEN: &str = "moai_model_time_to_first_token_seconds";
/// Histogram: a whole model call, by model, provider and outcome.
pub const MODEL_CALL_DURATION: &str = "moai_model_call_duration_seconds";
/// Counter: tokens, by model and kind (`prompt`, `completion`).
pub const MODEL_TOKENS: &str = "moai_model_tokens_total";
/// Cost in USD as the providers reported it, by model (a gauge that only grows,
/// since `metrics` counters hold whole numbers).
pub const MODEL_COST_USD: &str = "moai_model_cost_usd_total";
/// Counter: failed model calls, by model and reason.
pub const MODEL_FAILURES: &str = "moai_model_failures_total";
/// Histogram: time a call waited for a provider slot, by provider.
pub const PROVIDER_QUEUE: &str = "moai_provider_queue_seconds";
/// Gauge: runs in progress in this process.
pub const RUNS_ACTIVE: &str = "moai_runs_active";
/// Gauge: live subscribers of runs in this process.
pub const SUBSCRIBERS_ACTIVE: &str = "moai_subscribers_active";
/// Counter: finished gRPC calls, by method and code.
pub const GRPC_REQUESTS: &str = "moai_grpc_requests_total";

/// Bucket bounds of the `_seconds` histograms: from a fast local model's
/// first token to a long answer.
const SECONDS_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder (once per process: servers started in one test
/// process share it) and returns the handle `/metrics` renders; `None` when
/// another recorder was installed first.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .ok()?;
            let handle = builder.install_recorder().ok()?;
            describe();
            Some(handle)
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_histogram!(
        MODEL_TIME_TO_FIRST_TOKEN,
        metrics::Unit::Seconds,
        "Time from a model request to its first token"
    );
    describe_histogram!(
        MODEL_CALL_DURATION,
        metrics::Unit::Seconds,
        "Duration of a model call, queueing included"
    );
    describe_counter!(MODEL_TOKENS, "Tokens used by model calls");
    describe_gauge!(MODEL_COST_USD, "Cost of model calls in USD (only grows)");
    describe_counter!(MODEL_FAILURES, "Failed model calls");
    describe_histogram!(
        PROVIDER_QUEUE,
        metrics::Unit::Seconds,
        "Time a model call waited for a provider slot"
    );
    describe_gauge!(RUNS_ACTIVE, "Discussion runs in progress");
    describe_gauge!(SUBSCRIBERS_ACTIVE, "Live subscribers of discussion runs");
    describe_counter!(GRPC_REQUESTS, "Finished gRPC calls");
}

/// Records one finished model call: `m` as stored, the provider that
/// served it, when its first token came, and why it failed (the stored
/// form of its `FailureReason`, a bounded set), if it did.
pub fn model_call(
    m: &MessageRecord,
    provider: &str,
    first_token: Option<Duration>,
    failure: Option<&'static str>,
) {
    let model = m.model.clone();
    let provider = provider.to_owned();
    if let Some(first) = first_token {
        metrics::histogram!(MODEL_TIME_TO_FIRST_TOKEN, "model" => model.clone(), "provider" => provider.clone())
            .record(first.as_secs_f64());
    }
    let outcome = if failure.is_some() { "failed" } else { "ok" };
    metrics::histogram!(MODEL_CALL_DURATION, "model" => model.clone(), "provider" => provider, "outcome" => outcome)
        .record(Duration::from_millis(m.latency_ms).as_secs_f64());
    metrics::counter!(MODEL_TOKENS, "model" => model.clone(), "kind" => "prompt")
        .increment(m.prompt_tokens);
    metrics::counter!(MODEL_TOKENS, "model" => model.clone(), "kind" => "completion")
        .increment(m.completion_tokens);
    if m.cost_usd > 0.0 && m.cost_usd.is_finite() {
        // `metrics` counters count whole numbers; a gauge that only ever
        // grows keeps fractions of a cent.
        metrics::gauge!(MODEL_COST_USD, "model" => model.clone()).increment(m.cost_usd);
    }
    if let Some(reason) = failure {
        metrics::counter!(MODEL_FAILURES, "model" => model, "reason" => reason).increment(1);
    }
}

/// Records how long a call waited for a slot of `provider`.
pub fn provider_queue(provider: &str, waited: Duration) {
    metrics::histogram!(PROVIDER_QUEUE, "provider" => provider.to_owned())
        .record(waited.as_secs_f64());
}

/// Counts one for `gauge` while it lives: a run in progress, a subscriber.
pub struct Active(&'static str);

impl Active {
    /// Adds one to `gauge` until dropped.
    pub fn new(gauge: &'static str) -> Self {
        metrics::gauge!(gauge).increment(1.0);
        Self(gauge)
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        metrics::gauge!(self.0).decrement(1.0);
    }
}

impl std::fmt::Debug for Active {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}
