//! Reasoning models: thinking streams apart from the answer and counts as a
//! sign of life for the first-token limit.

use std::time::Duration;

use super::*;

#[tokio::test]
async fn reasoning_arrives_apart_from_the_answer_under_either_name() {
    let fake = FakeLlm::start().await;
    fake.script(
        "think/or",
        Script::new()
            .reasoning("Weighing both sides first.")
            .text("Yes."),
    );
    fake.script(
        "think/ds",
        Script::new()
            .reasoning("Hmm, let me see.")
            .reasoning_field("reasoning_content")
            .text("No."),
    );
    let llm = client(settings_for(&fake));

    let openrouter = run(&llm, ask("think/or", "q")).await;
    let deepseek = run(&llm, ask("think/ds", "q")).await;

    assert_eq!(openrouter.error, None);
    assert_eq!(openrouter.text(), "Yes.");
    assert_eq!(openrouter.reasoning.concat(), "Weighing both sides first.");
    assert_eq!(deepseek.text(), "No.");
    assert_eq!(deepseek.reasoning.concat(), "Hmm, let me see.");
}

#[tokio::test]
async fn thinking_counts_for_the_first_token_limit() {
    let fake = FakeLlm::start().await;
    // Twelve words of thinking 100 ms apart: the answer starts after 1.2 s,
    // well past the first-token limit, but the model was never silent long.
    fake.script(
        "think/slow",
        Script::new()
            .reasoning(FakeLlm::text_of_tokens(12))
            .token_pace(Duration::from_millis(100))
            .text("Done."),
    );
    let mut settings = settings_for(&fake);
    settings.timeouts.first_token_ms = 400;
    settings.timeouts.idle_ms = 400;
    let llm = client(settings);

    let outcome = run(&llm, ask("think/slow", "q")).await;

    assert_eq!(outcome.error, None);
    assert_eq!(outcome.text(), "Done.");
    assert_eq!(outcome.reasoning.len(), 12);
}

#[tokio::test]
async fn thinking_alone_is_an_empty_answer() {
    let fake = FakeLlm::start().await;
    fake.script(
        "think/only",
        Script::new().reasoning("All thought.").text(""),
    );
    let llm = client(settings_for(&fake));

    let outcome = run(&llm, ask("think/only", "q")).await;

    assert_eq!(outcome.error, Some(LlmError::EmptyAnswer));
    assert_eq!(outcome.reasoning.concat(), "All thought.");
}
