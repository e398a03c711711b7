//! The bot's settings, read from the environment by the binary.

use std::{collections::HashSet, path::PathBuf, time::Duration};

use moai_proto::tls::ClientTls;
use secrecy::SecretString;
use teloxide::types::UserId;

use crate::error::ConfigError;

/// Default address of the moai server.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:50051";

/// File name of the per-chat state inside a data directory.
pub const STATE_FILE_NAME: &str = "telegram-state.json";

/// Everything the bot needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The bot token (`TELOXIDE_TOKEN`).
    pub token: SecretString,
    /// Bot API base URL (`MOAI_TELEGRAM_API_URL`); `None` means Telegram's.
    pub api_url: Option<url::Url>,
    /// Address of the moai server (`MOAI_SERVER`).
    pub server: String,
    /// CA bundle and client certificate for an `https://` server
    /// (`MOAI_CA_CERT`, `MOAI_TLS_CLIENT_CERT`, `MOAI_TLS_CLIENT_KEY`).
    pub tls: ClientTls,
    /// The gateway key the bot acts for its users with (`MOAI_API_KEY`).
    pub api_key: SecretString,
    /// Who may use the bot (`MOAI_TELEGRAM_ALLOWED_USERS`).
    pub allowlist: Allowlist,
    /// Where the per-chat state is kept (`MOAI_TELEGRAM_STATE`).
    pub state_path: PathBuf,
    /// Long-polling timeout of `getUpdates`.
    pub poll_timeout: Duration,
    /// Shortest time between two edits of one message in a private chat;
    /// groups get three times as long.
    pub edit_interval: Duration,
    /// How often "typing…" is re-sent while models work.
    pub typing_interval: Duration,
}

impl Config {
    /// A configuration with the defaults for everything but the secrets.
    #[must_use]
    pub fn new(token: SecretString, api_key: SecretString, state_path: PathBuf) -> Self {
        Config {
            token,
            api_url: None,
            server: DEFAULT_SERVER.to_owned(),
            tls: ClientTls::default(),
            api_key,
            allowlist: Allowlist::default(),
            state_path,
            poll_timeout: Duration::from_secs(10),
            edit_interval: Duration::from_secs(1),
            typing_interval: Duration::from_secs(4),
        }
    }

    /// The default state file: `$MOAI_DATA_DIR/telegram-state.json`, else
    /// under the user's data directory, else in the working directory.
    #[must_use]
    pub fn default_state_path(data_dir: Option<PathBuf>) -> PathBuf {
        data_dir
            .or_else(|| dirs::data_dir().map(|dir| dir.join("moai")))
            .unwrap_or_else(|| PathBuf::from("."))
            .join(STATE_FILE_NAME)
    }
}

/// Telegram user ids allowed to use the bot. Empty refuses everyone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist(HashSet<u64>);

impl Allowlist {
    /// Parses a comma-separated list of user ids (spaces and empty items are ignored).
    ///
    /// # Errors
    /// [`ConfigError::BadUserId`] for an item that is not a number.
    pub fn parse(list: &str) -> Result<Self, ConfigError> {
        list.split([',', ' ', '\n'])
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| {
                item.parse::<u64>()
                    .map_err(|_| ConfigError::BadUserId(item.to_owned()))
            })
            .collect::<Result<HashSet<_>, _>>()
            .map(Allowlist)
    }

    /// Allows exactly these users.
    #[must_use]
    pub fn of(users: impl IntoIterator<Item = u64>) -> Self {
        Allowlist(users.into_iter().collect())
    }

    /// Whether `user` may use the bot.
    #[must_use]
    pub fn allows(&self, user: UserId) -> bool {
        self.0.contains(&user.0)
    }

    /// Whether nobody is allowed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many users are allowed.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlist_parses_ids_and_ignores_blanks() {
        let list = Allowlist::parse(" 1, 22,,333 ").expect("valid list");
        assert!(list.allows(UserId(22)));
        assert!(!list.allows(UserId(4)));
        assert_eq!(list.len(), 3);
        assert!(Allowlist::parse("").expect("empty is valid").is_empty());
    }

    #[test]
    fn allowlist_rejects_names() {
        assert!(
            matches!(Allowlist::parse("1,bob"), Err(ConfigError::BadUserId(item)) if item == "bob")
        );
    }
}
