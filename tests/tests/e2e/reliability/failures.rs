//! Each failure reason from its HTTP status (bodies as OpenRouter sends
//! them) or from the stream, with a text that says what to do, in the
//! event and in the store.

use moai_proto::v1;
use moai_tests::fake_llm::{OpenRouterError, Script};
use moai_tests::server::{Backend, TestOptions, TestServer};

use crate::on_both_backends;
use crate::support::*;

async fn every_failure_has_its_reason_and_a_text_saying_what_to_do(backend: Backend) {
    let ts = TestServer::spawn_with(TestOptions {
        backend,
        llm: Box::new(|llm| llm.timeouts.first_token_ms = 300),
        ..TestOptions::default()
    })
    .await;
    let seats: [(&str, Script, v1::FailureReason, &str); 11] = [
        (
            "v/key",
            Script::new().openrouter_fail(OpenRouterError::BadKey),
            v1::FailureReason::BadApiKey,
            "fake refused the server's API key (HTTP 401: No auth credentials found): the server's operator must set a valid key for fake",
        ),
        (
            "v/credits",
            Script::new().openrouter_fail(OpenRouterError::NoCredits),
            v1::FailureReason::OutOfCredits,
            "fake says the account is out of credits (HTTP 402: Insufficient credits.",
        ),
        (
            "v/gone",
            Script::new().openrouter_fail(OpenRouterError::NoEndpoints),
            v1::FailureReason::UnknownModel,
            "no model named v/gone at fake (HTTP 404: No endpoints found for v/gone.): see `moai models`",
        ),
        (
            "v/typo",
            Script::new().openrouter_fail(OpenRouterError::InvalidModel),
            v1::FailureReason::UnknownModel,
            "no model named v/typo at fake (HTTP 400: v/typo is not a valid model ID): see `moai models`",
        ),
        (
            "v/long",
            Script::new().openrouter_fail(OpenRouterError::ContextTooLong),
            v1::FailureReason::ContextTooLong,
            "the discussion is too long for v/long's context window",
        ),
        (
            "v/busy",
            Script::new().openrouter_fail(OpenRouterError::RateLimited),
            v1::FailureReason::RateLimited,
            "fake kept rate limiting v/busy (HTTP 429) after the retries: try again in a minute",
        ),
        (
            "v/down",
            Script::new().openrouter_fail(OpenRouterError::Internal),
            v1::FailureReason::UpstreamError,
            "fake failed to answer for v/down (HTTP 500: Internal Server Error): try again later",
        ),
        (
            "v/cut",
            Script::new().text("a b c d").cut_after(2),
            v1::FailureReason::BrokenStream,
            "the answer stream of v/cut broke off after 2 chunks",
        ),
        (
            "v/garbled",
            Script::new().text("a b c d").malformed_after(1),
            v1::FailureReason::BrokenStream,
            "fake sent data that is not a valid answer stream for v/garbled",
        ),
        (
            "v/mute",
            Script::new().text(""),
            v1::FailureReason::EmptyAnswer,
            "v/mute finished without saying anything",
        ),
        (
            "v/slow",
            Script::new().hang(),
            v1::FailureReason::Timeout,
            "v/slow timed out waiting for the first token (300ms): try again later, or raise llm.timeouts.first_token_ms",
        ),
    ];
    let models: Vec<&str> = seats.iter().map(|(m, ..)| *m).collect();
    for (model, script, ..) in &seats {
        ts.llm.script(model, script.clone());
    }
    let p = project(&ts, "failures", &models).await;

    let events = open(&ts, &p.id, "Fail, each your own way").await;

    let failures = failed(&events);
    let d = get(&ts, &discussion_id(&events)).await;
    let stored = all_messages(&d);
    for (model, _, reason, text) in &seats {
        let event = failures
            .iter()
            .find(|f| f.model == *model)
            .unwrap_or_else(|| panic!("{model} did not fail"));
        assert_eq!(
            v1::FailureReason::try_from(event.reason),
            Ok(*reason),
            "{model}: {}",
            event.error
        );
        assert!(event.error.contains(text), "{model}: {:?}", event.error);
        let message = stored.iter().find(|m| m.model == *model).expect("stored");
        assert_eq!(message.failure_reason, *reason as i32, "{model} stored");
        assert_eq!(message.error, event.error);
        assert!(!message.error.contains("fake-upstream-key"));
    }
}
on_both_backends!(
    failure_reasons,
    every_failure_has_its_reason_and_a_text_saying_what_to_do
);
