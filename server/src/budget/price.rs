//! A model's price: the TOML's `[llm.prices]` first, else the provider
//! catalogue's; and the prompt tokens of a context, estimated.

use crate::llm::{ChatMessage, LlmClient, ModelPrice};

/// The price of `model` (alias or full id), when anyone knows it.
pub(super) async fn lookup(llm: &LlmClient, model: &str) -> Option<ModelPrice> {
    let settings = llm.settings();
    let resolved = settings.resolve_alias(model);
    if let Some(price) = settings
        .prices
        .get(&resolved)
        .or_else(|| settings.prices.get(model))
    {
        return Some(*price);
    }
    llm.list_models()
        .await
        .into_iter()
        .find(|m| m.id == resolved)
        .and_then(|m| m.price)
}

/// Prompt tokens of `messages`, at about four bytes a token, plus a few per
/// message for the chat format.
pub(super) fn prompt_tokens(messages: &[ChatMessage]) -> u64 {
    messages
        .iter()
        .map(|m| u64::try_from(m.content.len().div_ceil(4)).unwrap_or(u64::MAX) + 4)
        .fold(0, u64::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_tokens_grow_with_the_context() {
        let one = [ChatMessage::user("x".repeat(400))];
        assert_eq!(prompt_tokens(&one), 104);
        let two = [
            ChatMessage::system("abcd"),
            ChatMessage::user("x".repeat(400)),
        ];
        assert_eq!(prompt_tokens(&two), 109);
    }
}
