//! How a fake model behaves: [`Script`].

use std::time::Duration;

use super::openrouter::OpenRouterError;

/// What the fake answers for one model. Builder-style; the default answers
/// at once with the default text.
#[derive(Clone, Debug)]
pub struct Script {
    /// Wait before the first content token (the role chunk goes out at once).
    pub first_token_delay: Duration,
    /// Wait between content tokens.
    pub token_pace: Duration,
    /// The answer; `None` = `"Answer from <model>: <first 40 chars of the last
    /// user message>"`. Streamed as word-ish tokens (see [`tokens`]).
    pub text: Option<String>,
    /// Answer this HTTP status (with an OpenAI-style error body) instead.
    pub fail_status: Option<u16>,
    /// `Retry-After` seconds sent with a failure.
    pub retry_after_secs: Option<u64>,
    /// Fail this many requests, then succeed; `usize::MAX` = always.
    pub fail_times: usize,
    /// Close the connection abruptly after this many content chunks (no
    /// finish, no `[DONE]`).
    pub cut_after_chunks: Option<usize>,
    /// Send a chunk that is not JSON after this many content chunks.
    pub malformed_after_chunks: Option<usize>,
    /// Send an OpenRouter-style error chunk (`error` object, finish reason
    /// `"error"`) after this many content chunks, then `[DONE]`.
    pub error_after_chunks: Option<usize>,
    /// Accept the request and never send a byte.
    pub hang: bool,
    /// `(prompt_tokens, completion_tokens, cost)`; default: computed from the
    /// text lengths, cost `0.0001` per token.
    pub usage: Option<(u64, u64, f64)>,
    /// Fail as OpenRouter does (status and body), counted like `fail_status`.
    pub openrouter_error: Option<OpenRouterError>,
    /// Thinking streamed before the answer, as word-ish tokens at
    /// `token_pace` (the answer's first token then waits `first_token_delay`).
    pub reasoning: Option<String>,
    /// The delta field the thinking goes in: `reasoning` (OpenRouter) or
    /// `reasoning_content` (DeepSeek, vLLM).
    pub reasoning_field: &'static str,
}

impl Default for Script {
    fn default() -> Self {
        Self {
            first_token_delay: Duration::ZERO,
            token_pace: Duration::ZERO,
            text: None,
            fail_status: None,
            retry_after_secs: None,
            fail_times: usize::MAX,
            cut_after_chunks: None,
            malformed_after_chunks: None,
            error_after_chunks: None,
            hang: false,
            usage: None,
            openrouter_error: None,
            reasoning: None,
            reasoning_field: "reasoning",
        }
    }
}

impl Script {
    pub fn new() -> Self {
        Self::default()
    }

    /// Answer exactly this text.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    pub fn first_token_delay(mut self, delay: Duration) -> Self {
        self.first_token_delay = delay;
        self
    }

    pub fn token_pace(mut self, pace: Duration) -> Self {
        self.token_pace = pace;
        self
    }

    /// Fail with `status` (every time, unless [`Script::fail_times`] is set).
    pub fn fail(mut self, status: u16) -> Self {
        self.fail_status = Some(status);
        self
    }

    pub fn fail_times(mut self, times: usize) -> Self {
        self.fail_times = times;
        self
    }

    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    pub fn cut_after(mut self, chunks: usize) -> Self {
        self.cut_after_chunks = Some(chunks);
        self
    }

    pub fn malformed_after(mut self, chunks: usize) -> Self {
        self.malformed_after_chunks = Some(chunks);
        self
    }

    pub fn error_after(mut self, chunks: usize) -> Self {
        self.error_after_chunks = Some(chunks);
        self
    }

    pub fn hang(mut self) -> Self {
        self.hang = true;
        self
    }

    pub fn usage(mut self, prompt_tokens: u64, completion_tokens: u64, cost: f64) -> Self {
        self.usage = Some((prompt_tokens, completion_tokens, cost));
        self
    }

    /// Fail as OpenRouter does (every time, unless [`Script::fail_times`] is set).
    pub fn openrouter_fail(mut self, error: OpenRouterError) -> Self {
        self.fail_status = Some(error.status());
        self.openrouter_error = Some(error);
        self
    }

    /// Think this text (streamed as `reasoning` deltas) before answering.
    pub fn reasoning(mut self, text: impl Into<String>) -> Self {
        self.reasoning = Some(text.into());
        self
    }

    /// Send the thinking in this delta field instead (`reasoning_content`).
    pub fn reasoning_field(mut self, field: &'static str) -> Self {
        self.reasoning_field = field;
        self
    }
}

/// Splits text into word-ish tokens, each word with the whitespace before it,
/// so that the tokens concatenate back to `text`:
/// `"Hello big world"` -> `["Hello", " big", " world"]`.
pub fn tokens(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut prev_was_space = true;
    for (i, c) in text.char_indices() {
        let space = c.is_whitespace();
        if space && !prev_was_space && i > start {
            out.push(&text[start..i]);
            start = i;
        }
        prev_was_space = space;
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// A deterministic text of exactly `n` tokens: `"w0 w1 w2 ..."`.
pub fn text_of_tokens(n: usize) -> String {
    let mut text = String::with_capacity(n * 6);
    for i in 0..n {
        if i > 0 {
            text.push(' ');
        }
        text.push('w');
        text.push_str(&i.to_string());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_concatenate_back_to_the_text() {
        for text in [
            "Hello big world",
            "  lead",
            "trail  ",
            "a\n\nb c",
            "",
            "one",
            "é ü",
        ] {
            assert_eq!(tokens(text).concat(), text, "{text:?}");
        }
        assert_eq!(tokens("Hello big world"), ["Hello", " big", " world"]);
    }

    #[test]
    fn text_of_tokens_has_that_many_tokens() {
        assert_eq!(tokens(&text_of_tokens(25)).len(), 25);
        assert_eq!(text_of_tokens(3), "w0 w1 w2");
    }
}
