//! The JSON that crosses the wire to an OpenAI-compatible provider. Responses
//! are read leniently (every field optional, unknown fields ignored) so that
//! OpenRouter's extras (`usage.cost`, `reasoning`, mid-stream `error`) and the
//! quirks of local servers do not break a call.

use serde::{Deserialize, Serialize};

use super::chat::{ChatMessage, ChatRole, Usage};

/// Body of `POST /chat/completions` with `stream: true`.
///
/// `max_tokens` (not `max_completion_tokens`) because it is the field every
/// OpenAI-compatible server (OpenRouter, vLLM, Ollama) understands.
#[derive(Debug, Serialize)]
pub(crate) struct StreamRequest {
    pub model: String,
    pub messages: Vec<WireMessage>,
    pub stream: bool,
    pub stream_options: StreamOptions,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
}

#[derive(Debug, Serialize)]
pub(crate) struct WireMessage {
    pub role: &'static str,
    pub content: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct StreamOptions {
    pub include_usage: bool,
}

impl StreamRequest {
    pub fn new(model: String, messages: Vec<ChatMessage>, max_tokens: Option<u32>) -> Self {
        Self {
            model,
            messages: messages
                .into_iter()
                .map(|m| WireMessage {
                    role: match m.role {
                        ChatRole::System => "system",
                        ChatRole::User => "user",
                        ChatRole::Assistant => "assistant",
                    },
                    content: m.content,
                })
                .collect(),
            stream: true,
            stream_options: StreamOptions {
                include_usage: true,
            },
            max_tokens,
        }
    }
}

/// One `data:` event of the stream (`chat.completion.chunk`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct StreamChunk {
    pub choices: Option<Vec<ChunkChoice>>,
    pub usage: Option<WireUsage>,
    /// OpenRouter reports failures after the headers as an `error` object.
    pub error: Option<WireError>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ChunkChoice {
    pub delta: Option<ChunkDelta>,
    pub finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ChunkDelta {
    pub content: Option<String>,
    /// Thinking text of reasoning models (OpenRouter); not part of the answer,
    /// but proof the model is alive.
    pub reasoning: Option<String>,
    /// The same, as DeepSeek and vLLM name it.
    pub reasoning_content: Option<String>,
}

impl ChunkDelta {
    /// The thinking text of this delta, under either name (not both: a
    /// server that sends both sends the same text twice).
    pub fn take_reasoning(&mut self) -> Option<String> {
        let reasoning = self.reasoning.take().filter(|r| !r.is_empty());
        let content = self.reasoning_content.take().filter(|r| !r.is_empty());
        reasoning.or(content)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WireUsage {
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    /// OpenRouter: what the call cost, in USD.
    pub cost: Option<f64>,
}

impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Self {
        Usage {
            prompt_tokens: u.prompt_tokens.unwrap_or(0),
            completion_tokens: u.completion_tokens.unwrap_or(0),
            cost_usd: u.cost.filter(|c| c.is_finite() && *c >= 0.0).unwrap_or(0.0),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WireError {
    /// A number (HTTP-like status) at OpenRouter, a string at others.
    pub code: Option<serde_json::Value>,
    pub message: Option<String>,
}

impl WireError {
    /// The status the error names, if it looks like an HTTP status.
    pub fn status(&self) -> Option<u16> {
        let code = match self.code.as_ref()? {
            serde_json::Value::Number(n) => n.as_u64()?,
            serde_json::Value::String(s) => s.parse().ok()?,
            _ => return None,
        };
        u16::try_from(code).ok().filter(|c| (400..600).contains(c))
    }
}

/// `GET /models`: `{"data": [...]}`; entries are parsed one by one so one odd
/// entry does not hide the others.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ModelList {
    pub data: Vec<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WireModel {
    pub id: String,
    /// OpenRouter's display name.
    pub name: Option<String>,
    /// OpenRouter's context window in tokens.
    pub context_length: Option<u64>,
    /// OpenRouter's prices, USD per token, as decimal strings.
    pub pricing: Option<WirePricing>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WirePricing {
    pub prompt: Option<String>,
    pub completion: Option<String>,
}

impl WirePricing {
    /// The prices per million tokens, when both parse as amounts.
    pub fn per_million(&self) -> Option<super::settings::ModelPrice> {
        let parse = |v: &Option<String>| {
            v.as_deref()
                .and_then(|s| s.trim().parse::<f64>().ok())
                .filter(|p| p.is_finite() && *p >= 0.0)
        };
        Some(super::settings::ModelPrice {
            prompt_per_million: parse(&self.prompt)? * 1_000_000.0,
            completion_per_million: parse(&self.completion)? * 1_000_000.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_asks_for_usage_and_uses_plain_roles() -> Result<(), serde_json::Error> {
        let req = StreamRequest::new(
            "m".into(),
            vec![
                ChatMessage {
                    role: ChatRole::System,
                    content: "s".into(),
                },
                ChatMessage {
                    role: ChatRole::User,
                    content: "u".into(),
                },
            ],
            None,
        );
        let json = serde_json::to_value(&req)?;
        assert_eq!(
            json,
            serde_json::json!({
                "model": "m",
                "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
                "stream": true,
                "stream_options": {"include_usage": true}
            })
        );
        Ok(())
    }

    #[test]
    fn openrouter_usage_chunk_carries_cost() -> Result<(), serde_json::Error> {
        let chunk: StreamChunk = serde_json::from_str(
            r#"{"id":"x","object":"chat.completion.chunk","choices":[],
                "usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17,"cost":0.0042,
                         "prompt_tokens_details":{"cached_tokens":0}}}"#,
        )?;
        let usage = Usage::from(chunk.usage.unwrap_or_default());
        assert_eq!(
            usage,
            Usage {
                prompt_tokens: 12,
                completion_tokens: 5,
                cost_usd: 0.0042
            }
        );
        Ok(())
    }

    #[test]
    fn nulls_and_missing_fields_are_tolerated() -> Result<(), serde_json::Error> {
        let chunk: StreamChunk =
            serde_json::from_str(r#"{"choices":null,"usage":null,"extra":[1,2]}"#)?;
        assert!(chunk.choices.is_none() && chunk.usage.is_none());
        let chunk: StreamChunk = serde_json::from_str(
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null},"finish_reason":null}]}"#,
        )?;
        assert!(chunk.choices.is_some());
        Ok(())
    }

    #[test]
    fn reasoning_is_read_under_both_names_once() -> Result<(), serde_json::Error> {
        let read = |json: &str| -> Result<Option<String>, serde_json::Error> {
            let mut delta: ChunkDelta = serde_json::from_str(json)?;
            Ok(delta.take_reasoning())
        };
        assert_eq!(read(r#"{"reasoning":"hm"}"#)?.as_deref(), Some("hm"));
        assert_eq!(
            read(r#"{"reasoning_content":"hm"}"#)?.as_deref(),
            Some("hm")
        );
        assert_eq!(
            read(r#"{"reasoning":"hm","reasoning_content":"hm"}"#)?.as_deref(),
            Some("hm")
        );
        assert_eq!(read(r#"{"reasoning":null,"content":"x"}"#)?, None);
        Ok(())
    }

    #[test]
    fn error_codes_become_statuses_when_plausible() {
        let e = |code| WireError {
            code: Some(code),
            message: None,
        };
        assert_eq!(e(serde_json::json!(502)).status(), Some(502));
        assert_eq!(e(serde_json::json!("429")).status(), Some(429));
        assert_eq!(e(serde_json::json!("server_error")).status(), None);
        assert_eq!(e(serde_json::json!(7)).status(), None);
    }
}
