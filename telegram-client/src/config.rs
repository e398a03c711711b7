//! The bot's settings, read from the environment by the binary.

use std::{collections::HashSet, path::PathBuf, time::Duration};

use moai_proto::tls::ClientTls;
use secrecy::SecretString;
use teloxide::types::{ChatId, UserId};

use crate::error::ConfigError;

/// Default address of the moai server.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:50051";

/// Telegram's limit on the messages a bot sends to one group, per minute.
pub const DEFAULT_GROUP_MESSAGES_PER_MINUTE: u32 = 20;

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
    /// Who may use the bot anywhere (`MOAI_TELEGRAM_ALLOWED_USERS`).
    pub allowlist: Allowlist,
    /// Groups whose members may use the bot there (`MOAI_TELEGRAM_ALLOWED_CHATS`).
    pub allowed_chats: ChatAllowlist,
    /// Where the per-chat state is kept (`MOAI_TELEGRAM_STATE`).
    pub state_path: PathBuf,
    /// Long-polling timeout of `getUpdates`.
    pub poll_timeout: Duration,
    /// Shortest time between two edits of one message in a private chat;
    /// groups get three times as long.
    pub edit_interval: Duration,
    /// How often "typing…" is re-sent while models work.
    pub typing_interval: Duration,
    /// Messages a minute the bot allows itself in one group
    /// (`MOAI_TELEGRAM_GROUP_MESSAGES_PER_MINUTE`; Telegram's limit is about 20).
    pub group_messages_per_minute: u32,
    /// How long a stopping bot lets the answers it shows run to their end
    /// (`MOAI_TELEGRAM_SHUTDOWN_GRACE`); then each gets a last edit.
    pub shutdown_grace: Duration,
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
            allowed_chats: ChatAllowlist::default(),
            state_path,
            poll_timeout: Duration::from_secs(10),
            edit_interval: Duration::from_secs(1),
            typing_interval: Duration::from_secs(4),
            group_messages_per_minute: DEFAULT_GROUP_MESSAGES_PER_MINUTE,
            shutdown_grace: Duration::from_secs(10),
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

/// Group chats whose members may all use the bot there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatAllowlist(HashSet<i64>);

impl ChatAllowlist {
    /// Parses a comma-separated list of chat ids (group ids are negative).
    ///
    /// # Errors
    /// [`ConfigError::BadChatId`] for an item that is not a number.
    pub fn parse(list: &str) -> Result<Self, ConfigError> {
        list.split([',', ' ', '\n'])
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| {
                item.parse::<i64>()
                    .map_err(|_| ConfigError::BadChatId(item.to_owned()))
            })
            .collect::<Result<HashSet<_>, _>>()
            .map(ChatAllowlist)
    }

    /// Allows exactly these chats.
    #[must_use]
    pub fn of(chats: impl IntoIterator<Item = i64>) -> Self {
        ChatAllowlist(chats.into_iter().collect())
    }

    /// Whether the members of `chat` may use the bot there.
    #[must_use]
    pub fn allows(&self, chat: ChatId) -> bool {
        self.0.contains(&chat.0)
    }

    /// How many chats are allowed.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no chat is allowed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_allowlist_parses_negative_ids() {
        let list = ChatAllowlist::parse("-500, -1001234567890").expect("valid list");
        assert!(list.allows(ChatId(-1_001_234_567_890)));
        assert!(!list.allows(ChatId(500)));
        assert!(matches!(
            ChatAllowlist::parse("-5,team"),
            Err(ConfigError::BadChatId(item)) if item == "team"
        ));
    }

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
