//! Errors of the bot, and how a moai API error is told to a user.

use tonic::{Code, Status};

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An entry of `MOAI_TELEGRAM_ALLOWED_USERS` is not a numeric user id.
    #[error("MOAI_TELEGRAM_ALLOWED_USERS: {0:?} is not a Telegram user id")]
    BadUserId(String),
    /// An entry of `MOAI_TELEGRAM_ALLOWED_CHATS` is not a numeric chat id.
    #[error("MOAI_TELEGRAM_ALLOWED_CHATS: {0:?} is not a Telegram chat id")]
    BadChatId(String),
    /// The server address cannot be parsed.
    #[error("MOAI_SERVER: {0}")]
    BadServer(String),
    /// A TLS file (`MOAI_CA_CERT`, `MOAI_TLS_CLIENT_CERT`/`_KEY`) cannot be used.
    #[error("{0}")]
    Tls(String),
    /// The API key cannot be sent in a header.
    #[error("MOAI_API_KEY contains characters that cannot be sent in a header")]
    BadApiKey,
}

/// Why the per-chat state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing the state file failed.
    #[error("state file {path}: {source}")]
    Io {
        /// The state file.
        path: String,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The state file holds something else than the bot's state.
    #[error("state file {path} is not valid: {source}")]
    Corrupt {
        /// The state file.
        path: String,
        /// What went wrong.
        #[source]
        source: serde_json::Error,
    },
}

/// Why the bot stopped or a handler failed.
#[derive(Debug, thiserror::Error)]
pub enum BotError {
    /// A setting cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The per-chat state could not be read or written.
    #[error(transparent)]
    State(#[from] StateError),
    /// A Telegram Bot API call failed.
    #[error("Telegram: {0}")]
    Telegram(#[from] teloxide::RequestError),
}

/// The most of a server's error message shown to a user.
const MAX_DETAIL: usize = 300;

/// A short, friendly line for a moai API error: no stack traces, no keys.
#[must_use]
pub fn friendly(status: &Status) -> String {
    let detail: String = status.message().trim().chars().take(MAX_DETAIL).collect();
    let detail_or = |fallback: &str| {
        if detail.is_empty() {
            fallback.to_owned()
        } else {
            detail.clone()
        }
    };
    if let Some(failure) = moai_proto::tls::tls_failure(status) {
        // The user cannot fix it; the operator reads the log.
        tracing::warn!(%failure, "TLS connection to the moai server failed");
        return "The moai server can't be reached securely (a TLS problem). Please tell the bot's operator.".to_owned();
    }
    match status.code() {
        Code::NotFound => format!(
            "Not found: {}. /projects lists yours.",
            detail_or("it may have been deleted")
        ),
        Code::InvalidArgument => format!("That didn't work: {}.", detail_or("invalid input")),
        Code::FailedPrecondition => format!(
            "Not now: {}.",
            detail_or("the request cannot be done in this state")
        ),
        Code::AlreadyExists => format!("Already exists: {}.", detail_or("choose another name")),
        Code::Unauthenticated | Code::PermissionDenied => {
            "The moai server did not accept this bot's key. Please tell the bot's operator."
                .to_owned()
        }
        Code::Unavailable => {
            "The moai server can't be reached right now. Please try again in a moment.".to_owned()
        }
        // A budget refusal names the budget, the spend and when it resets.
        Code::ResourceExhausted if detail.contains("budget of") => {
            let mut chars = detail.chars();
            let first: String = chars
                .next()
                .map(|c| c.to_uppercase().collect())
                .unwrap_or_default();
            format!("{first}{}.", chars.as_str())
        }
        Code::ResourceExhausted if detail.contains("max_active_runs") => {
            format!("⏳ Not now: {detail}.")
        }
        Code::ResourceExhausted => {
            "Too many requests right now. Please wait a little and try again.".to_owned()
        }
        Code::DeadlineExceeded => {
            "The moai server took too long to answer. Please try again.".to_owned()
        }
        Code::Cancelled => "The request was cancelled.".to_owned(),
        _ => "Something went wrong on the moai server. Please try again later.".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn friendly_lines_keep_the_server_detail_for_user_errors() {
        let line = friendly(&Status::invalid_argument("unknown model \"x/y\""));
        assert_eq!(line, "That didn't work: unknown model \"x/y\".");
    }

    #[test]
    fn a_budget_refusal_is_one_line_saying_when_it_resets() {
        let line = friendly(&Status::resource_exhausted(
            "daily budget of $0.50 reached ($0.51 spent); resets at 00:00 UTC",
        ));
        assert_eq!(
            line,
            "Daily budget of $0.50 reached ($0.51 spent); resets at 00:00 UTC."
        );
    }

    #[test]
    fn friendly_lines_hide_internal_details() {
        let line = friendly(&Status::internal("panicked at src/db.rs:42 key=secret"));
        assert!(!line.contains("secret"));
        assert!(friendly(&Status::unavailable("tcp connect error")).contains("can't be reached"));
    }
}
