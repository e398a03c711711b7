//! Whom the bot acts for on the moai server. In a private chat that is the
//! Telegram user (`telegram:<user id>`), so each user's projects are theirs;
//! in a group or supergroup it is the group (`telegram-group:<chat id>`), so
//! every member works on the same council.

use teloxide::types::{ChatId, UserId};

use crate::state::ChatState;

/// The moai principal the bot acts for in one chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// A user, in their private chat with the bot.
    User(UserId),
    /// A group, by the id it first had (a supergroup made from a group
    /// keeps the group's projects).
    Group(i64),
}

impl Actor {
    /// Whom the bot acts for in `chat`, whose state is `state`.
    #[must_use]
    pub fn of(chat: ChatId, state: &ChatState) -> Self {
        match chat.as_user() {
            Some(user) => Actor::User(user),
            None => Actor::Group(state.migrated_from.unwrap_or(chat.0)),
        }
    }

    /// The gateway user named in `x-moai-user`.
    #[must_use]
    pub fn principal(self) -> String {
        match self {
            Actor::User(user) => format!("telegram:{}", user.0),
            Actor::Group(chat) => format!("telegram-group:{chat}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_chats_act_for_the_user_and_groups_for_the_group() {
        let state = ChatState::default();
        assert_eq!(Actor::of(ChatId(1001), &state).principal(), "telegram:1001");
        assert_eq!(
            Actor::of(ChatId(-500), &state).principal(),
            "telegram-group:-500"
        );
        let migrated = ChatState {
            migrated_from: Some(-500),
            ..ChatState::default()
        };
        assert_eq!(
            Actor::of(ChatId(-1_000_000_000_500), &migrated).principal(),
            "telegram-group:-500",
            "a supergroup keeps the group's projects"
        );
    }
}
