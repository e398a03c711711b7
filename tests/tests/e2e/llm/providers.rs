//! Several providers: routing, concurrency slots, cancellation, `/models`.

use std::time::Duration;

use futures::StreamExt;
use moai_server::llm::{ChatChunk, LlmError, LlmSettings, ModelInfo};
use moai_tests::fake_llm::{FakeLlm, Script};

use super::{ask, client, closed_port_url, provider, run, settings_for};

#[tokio::test]
async fn models_are_routed_by_alias_then_prefix_then_catch_all() {
    let openai = FakeLlm::start().await;
    let others = FakeLlm::start().await;
    let mut settings = LlmSettings {
        providers: vec![
            provider("openai", openai.base_url(), &["openai/"]),
            provider("others", others.base_url(), &[]),
        ],
        ..LlmSettings::default()
    };
    settings
        .aliases
        .insert("gpt".into(), "openai/gpt-4o".into());
    let llm = client(settings);

    let by_alias = run(&llm, ask("gpt", "one")).await;
    let by_prefix = run(&llm, ask("openai/gpt-4o-mini", "two")).await;
    let catch_all = run(&llm, ask("anthropic/claude-sonnet-4", "three")).await;

    for outcome in [&by_alias, &by_prefix, &catch_all] {
        assert_eq!(outcome.error, None);
    }
    assert_eq!(by_alias.text(), "Answer from openai/gpt-4o: one");
    let models =
        |fake: &FakeLlm| -> Vec<String> { fake.requests().into_iter().map(|r| r.model).collect() };
    assert_eq!(models(&openai), ["openai/gpt-4o", "openai/gpt-4o-mini"]);
    assert_eq!(models(&others), ["anthropic/claude-sonnet-4"]);
    assert_eq!(openai.requests()[0].api_key.as_deref(), Some("key-openai"));
    assert_eq!(others.requests()[0].api_key.as_deref(), Some("key-others"));
}

#[tokio::test]
async fn stripped_prefix_is_removed_upstream_and_restored_in_listings() {
    let ollama = FakeLlm::start().await;
    ollama.register_model("llama3");
    let others = FakeLlm::start().await;
    let mut local = provider("ollama", ollama.base_url(), &["ollama/"]);
    local.strip_prefix = true;
    let llm = client(LlmSettings {
        providers: vec![local, provider("others", others.base_url(), &[])],
        ..LlmSettings::default()
    });

    let listed: Vec<String> = llm.list_models().await.into_iter().map(|m| m.id).collect();
    let outcome = run(&llm, ask("ollama/llama3", "hi")).await;

    assert_eq!(listed, ["ollama/llama3"]);
    assert_eq!(outcome.error, None);
    assert_eq!(ollama.requests()[0].model, "llama3");
    assert!(others.requests().is_empty());
}

#[tokio::test]
async fn model_without_a_provider_is_unknown_provider() {
    let fake = FakeLlm::start().await;
    let llm = client(LlmSettings {
        providers: vec![provider("openai", fake.base_url(), &["openai/"])],
        ..LlmSettings::default()
    });

    let outcome = run(&llm, ask("meta/llama-3", "hi")).await;

    assert_eq!(
        outcome.error,
        Some(LlmError::UnknownProvider {
            model: "meta/llama-3".into()
        })
    );
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn concurrency_limit_holds_the_second_stream_until_the_first_ends() {
    let fake = FakeLlm::start().await;
    let pace = Duration::from_millis(60);
    fake.script(
        "slow",
        Script::new()
            .text(FakeLlm::text_of_tokens(6))
            .token_pace(pace),
    );
    let mut settings = settings_for(&fake);
    settings.providers[0].max_concurrency = Some(1);
    let llm = client(settings);

    let (slow, fast) = tokio::join!(run(&llm, ask("slow", "a")), async {
        // "fast" asks once "slow" holds the slot: its request reached the fake.
        assert!(
            fake.wait_requests("slow", 1, Duration::from_secs(10)).await,
            "the first request never arrived"
        );
        run(&llm, ask("fast", "b")).await
    });

    assert_eq!((slow.error, fast.error), (None, None));
    let slow_at = fake.requests_for("slow")[0].received_at;
    let fast_at = fake.requests_for("fast")[0].received_at;
    // "slow" streams for 5 paces after its first token; "fast" waited for it.
    assert!(
        fast_at >= slow_at + pace * 5,
        "second request came {:?} after the first",
        fast_at - slow_at
    );
}

#[tokio::test]
async fn dropping_the_stream_closes_the_upstream_request_and_frees_the_slot() {
    let fake = FakeLlm::start().await;
    fake.script(
        "long",
        Script::new()
            .text(FakeLlm::text_of_tokens(200))
            .token_pace(Duration::from_millis(20)),
    );
    let mut settings = settings_for(&fake);
    settings.providers[0].max_concurrency = Some(1);
    let llm = client(settings);

    let mut stream = llm.stream_chat(ask("long", "talk for a while"));
    assert!(matches!(
        stream.next().await,
        Some(Ok(ChatChunk::Accepted { .. }))
    ));
    for expected in ["w0", " w1"] {
        let item = stream.next().await;
        assert_eq!(item, Some(Ok(ChatChunk::Delta(expected.into()))));
    }
    drop(stream);

    assert!(
        fake.wait_dropped("long", Duration::from_secs(2)).await,
        "the fake never saw the stream go away"
    );
    // The only slot is free again.
    let next = tokio::time::timeout(Duration::from_secs(2), run(&llm, ask("other", "hi"))).await;
    assert_eq!(next.map(|o| o.error), Ok(None));
}

#[tokio::test]
async fn list_models_merges_providers_and_survives_one_being_down() {
    let first = FakeLlm::start().await;
    first.register_model_with_context("openai/gpt-4o", 128_000);
    first.script("zeta/model", Script::new());
    let second = FakeLlm::start().await;
    second.register_model("anthropic/claude-sonnet-4");
    second.register_model("openai/gpt-4o");
    let mut settings = LlmSettings {
        providers: vec![
            provider("first", first.base_url(), &["openai/"]),
            provider("down", closed_port_url(), &[]),
            provider("second", second.base_url(), &[]),
        ],
        ..LlmSettings::default()
    };
    settings.retry.base_delay_ms = 10;
    let llm = client(settings);

    let models = llm.list_models().await;

    let info = |id: &str, provider: &str, name: &str, context_length| ModelInfo {
        id: id.into(),
        provider: provider.into(),
        name: name.into(),
        context_length,
        price: None,
    };
    assert_eq!(
        models,
        [
            info(
                "anthropic/claude-sonnet-4",
                "second",
                "anthropic/claude-sonnet-4",
                0
            ),
            info("openai/gpt-4o", "first", "Fake openai/gpt-4o", 128_000),
            info("zeta/model", "first", "zeta/model", 0),
        ]
    );
}

#[tokio::test]
async fn list_models_is_cached_for_the_configured_time() {
    let fake = FakeLlm::start().await;
    fake.register_model("a");
    let cached = client(settings_for(&fake));
    let uncached = client(LlmSettings {
        models_cache_secs: 0,
        ..settings_for(&fake)
    });
    let ids =
        |models: Vec<ModelInfo>| -> Vec<String> { models.into_iter().map(|m| m.id).collect() };
    assert_eq!(ids(cached.list_models().await), ["a"]);
    assert_eq!(ids(uncached.list_models().await), ["a"]);

    fake.register_model("b");

    assert_eq!(ids(cached.list_models().await), ["a"]);
    assert_eq!(ids(uncached.list_models().await), ["a", "b"]);
}

#[tokio::test]
async fn many_concurrent_streams_each_get_their_own_answer() {
    let fake = FakeLlm::start().await;
    let llm = client(settings_for(&fake));

    let outcomes = futures::future::join_all((0..200).map(|i| {
        let llm = llm.clone();
        tokio::spawn(async move { run(&llm, ask(&format!("m{i}"), &format!("q{i}"))).await })
    }))
    .await;

    for (i, outcome) in outcomes.into_iter().enumerate() {
        let outcome = outcome.expect("task finished");
        assert_eq!(outcome.error, None);
        assert_eq!(outcome.text(), format!("Answer from m{i}: q{i}"));
    }
    assert_eq!(fake.requests().len(), 200);
    assert_eq!(fake.request_count(), 200);
}
