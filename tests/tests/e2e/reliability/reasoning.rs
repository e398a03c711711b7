//! A reasoning model's thinking: streamed apart, stored apart, and never
//! part of what the other models hear.

use moai_proto::v1::{self, discussion_event::Payload};
use moai_tests::events::payloads;
use moai_tests::fake_llm::Script;
use moai_tests::server::{Backend, TestServer};

use crate::on_both_backends;
use crate::support::*;

async fn thinking_arrives_apart_is_stored_apart_and_is_not_in_the_next_context(backend: Backend) {
    let ts = TestServer::spawn_on(backend).await;
    ts.llm.script(
        "think/deep",
        Script::new()
            .reasoning("Secret chain of thought here.")
            .text("Forty-two."),
    );
    ts.llm.script("v/next", Script::new().text("I agree."));
    let p = project(&ts, "thinking", &["think/deep", "v/next"]).await;

    let events = open(&ts, &p.id, "What is the answer?").await;

    let deltas: Vec<&v1::MessageDelta> = payloads(&events)
        .into_iter()
        .filter_map(|p| match p {
            Payload::MessageDelta(d) if d.model == "think/deep" => Some(d),
            _ => None,
        })
        .collect();
    let text: String = deltas.iter().map(|d| d.text.as_str()).collect();
    let reasoning: String = deltas.iter().map(|d| d.reasoning.as_str()).collect();
    assert_eq!(text, "Forty-two.");
    assert_eq!(reasoning, "Secret chain of thought here.");
    let id = discussion_id(&events);
    let stored = all_messages(&get(&ts, &id).await);
    let deep = stored
        .iter()
        .find(|m| m.model == "think/deep")
        .expect("stored");
    assert_eq!(deep.content, "Forty-two.");
    assert_eq!(deep.reasoning, "Secret chain of thought here.");

    // A round in turns: v/next hears the answer, not the thinking.
    next_round(&ts, &id).await.expect("next round");
    let heard: String = ts
        .llm
        .requests_for("v/next")
        .last()
        .expect("v/next was asked")
        .messages
        .iter()
        .map(|m| m.content.clone())
        .collect();
    assert!(heard.contains("Forty-two."), "{heard}");
    assert!(!heard.contains("Secret chain"), "{heard}");
}
on_both_backends!(
    reasoning_apart,
    thinking_arrives_apart_is_stored_apart_and_is_not_in_the_next_context
);
