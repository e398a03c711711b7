//! The fake upstream speaks OpenAI's exact format: async-openai's strict,
//! typed client (not the lenient one the server uses) accepts its answers.

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::types::chat::{
    ChatCompletionRequestUserMessageArgs, ChatCompletionStreamOptions, CreateChatCompletionRequest,
    CreateChatCompletionRequestArgs, FinishReason,
};
use futures::StreamExt;
use moai_tests::fake_llm::{FakeLlm, Script};

fn typed_client(fake: &FakeLlm) -> Client<OpenAIConfig> {
    Client::with_config(
        OpenAIConfig::new()
            .with_api_base(fake.base_url())
            .with_api_key("typed-key"),
    )
}

fn request(model: &str, stream: bool) -> CreateChatCompletionRequest {
    let message = ChatCompletionRequestUserMessageArgs::default()
        .content("Is the fake faithful?")
        .build()
        .expect("user message");
    CreateChatCompletionRequestArgs::default()
        .model(model)
        .messages([message.into()])
        .stream(stream)
        .stream_options(ChatCompletionStreamOptions {
            include_usage: Some(true),
            include_obfuscation: None,
        })
        .build()
        .expect("request")
}

#[tokio::test]
async fn streamed_chunks_parse_as_openai_chunks() {
    let fake = FakeLlm::start().await;
    fake.script("m", Script::new().text("Yes it is.").usage(7, 3, 0.5));
    let client = typed_client(&fake);

    let mut stream = client
        .chat()
        .create_stream(request("m", true))
        .await
        .expect("stream opens");
    let mut chunks = Vec::new();
    while let Some(chunk) = stream.next().await {
        chunks.push(chunk.expect("every chunk parses"));
    }

    let text: String = chunks
        .iter()
        .flat_map(|c| &c.choices)
        .filter_map(|choice| choice.delta.content.clone())
        .collect();
    assert_eq!(text, "Yes it is.");
    assert!(
        chunks
            .iter()
            .all(|c| c.object == "chat.completion.chunk" && c.model == "m")
    );
    let finish: Vec<_> = chunks
        .iter()
        .flat_map(|c| &c.choices)
        .filter_map(|choice| choice.finish_reason)
        .collect();
    assert_eq!(finish, [FinishReason::Stop]);
    let last = chunks.last().expect("a usage chunk");
    assert!(last.choices.is_empty());
    let usage = last.usage.as_ref().expect("usage reported");
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens
        ),
        (7, 3, 10)
    );
    assert_eq!(fake.requests()[0].api_key.as_deref(), Some("typed-key"));
}

#[tokio::test]
async fn plain_answers_and_model_lists_parse_as_openai_types() {
    let fake = FakeLlm::start().await;
    fake.script("m", Script::new().text("Plain."));
    fake.register_model("other");
    let client = typed_client(&fake);

    let answer = client
        .chat()
        .create(request("m", false))
        .await
        .expect("plain answer parses");
    let models = client.models().list().await.expect("model list parses");

    assert_eq!(answer.choices[0].message.content.as_deref(), Some("Plain."));
    assert!(answer.usage.is_some());
    assert!(!fake.requests()[0].stream);
    let ids: Vec<&str> = models.data.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["m", "other"]);
}

#[tokio::test]
async fn failures_parse_as_openai_errors() {
    let fake = FakeLlm::start().await;
    fake.script("m", Script::new().fail(400));
    let client = typed_client(&fake);

    let error = client
        .chat()
        .create(request("m", false))
        .await
        .expect_err("scripted failure");

    match error {
        async_openai::error::OpenAIError::ApiError(e) => {
            assert_eq!(e.status_code.as_u16(), 400);
            assert_eq!(e.api_error.message, "scripted failure");
        }
        other => panic!("not an API error: {other:?}"),
    }
}
