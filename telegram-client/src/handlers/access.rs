//! Who may use the bot, and where: the allowed users anywhere, every member
//! of an allowed group in that group. Anyone else gets one polite refusal
//! per chat, and nothing of theirs reaches the moai server.

use std::sync::{Arc, PoisonError};

use teloxide::{
    payloads::AnswerCallbackQuerySetters,
    prelude::Requester,
    types::{ChatId, ChatMemberUpdated, Update, UpdateKind, User, UserId},
};

use super::{App, HandlerResult};
use crate::{
    config::{Allowlist, ChatAllowlist},
    state::ChatState,
    telegram::{self, Tg},
};

/// The allowlists.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Users who may use the bot anywhere (`MOAI_TELEGRAM_ALLOWED_USERS`).
    pub users: Allowlist,
    /// Groups whose members may use it there (`MOAI_TELEGRAM_ALLOWED_CHATS`).
    pub chats: ChatAllowlist,
}

impl Access {
    /// Whether the members of `chat` may use the bot there: an allowed
    /// group, or a supergroup made from one (`state.migrated_from`).
    #[must_use]
    pub fn allows_chat(&self, chat: ChatId, state: &ChatState) -> bool {
        !chat.is_user()
            && (self.chats.allows(chat)
                || state
                    .migrated_from
                    .is_some_and(|from| self.chats.allows(ChatId(from))))
    }

    /// Whether `user` (if known) may use the bot in `chat`.
    #[must_use]
    pub fn allows(&self, chat: ChatId, state: &ChatState, user: Option<UserId>) -> bool {
        user.is_some_and(|user| self.users.allows(user)) || self.allows_chat(chat, state)
    }
}

impl App {
    /// Whether `user` may use the bot where `update` happened.
    pub(super) async fn may_use(&self, update: &Update, user: &User) -> bool {
        if self.access.users.allows(user.id) {
            return true;
        }
        let Some(chat) = update.chat().map(|chat| chat.id) else {
            return false;
        };
        let state = self.store.get(chat).await;
        self.access.allows_chat(chat, &state)
    }

    /// Marks `chat` as told; `true` the first time.
    fn first_refusal(&self, chat: ChatId) -> bool {
        self.refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(chat)
    }
}

#[tracing::instrument(skip_all, fields(user = user.id.0))]
pub(super) async fn refuse(bot: Tg, update: Update, user: User, app: Arc<App>) -> HandlerResult {
    match update.kind {
        UpdateKind::CallbackQuery(query) => {
            tracing::info!("refused a button press of a user who may not use the bot here");
            bot.answer_callback_query(query.id)
                .text("Sorry, this bot is private.")
                .await?;
        }
        UpdateKind::Message(msg) => {
            let first_time = app.first_refusal(msg.chat.id);
            tracing::info!(
                chat = msg.chat.id.0,
                first_time,
                "refused a user who may not use the bot here"
            );
            if first_time {
                let text = if msg.chat.is_private() {
                    format!(
                        "Sorry, this bot is private. If you should have access, ask its operator to \
                         add your Telegram user id <code>{}</code> to the allowlist.",
                        user.id.0
                    )
                } else {
                    not_allowed_here(msg.chat.id)
                };
                telegram::send(&bot, msg.chat.id, &text).await?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// What a group that is not allowed is told, once.
fn not_allowed_here(chat: ChatId) -> String {
    format!(
        "Sorry, this bot is private and this group is not on its list, so I stay quiet here. \
         To let every member use it, ask its operator to allow the chat id <code>{}</code>.",
        chat.0
    )
}

/// The bot joined a chat (or left one): a group that is not allowed is told so once.
#[tracing::instrument(skip_all, fields(chat = update.chat.id.0))]
pub(super) async fn joined(bot: Tg, update: ChatMemberUpdated, app: Arc<App>) -> HandlerResult {
    let chat = update.chat.id;
    if chat.is_user()
        || !update.new_chat_member.kind.is_present()
        || update.old_chat_member.kind.is_present()
    {
        return Ok(());
    }
    let state = app.store.get(chat).await;
    if app.access.allows_chat(chat, &state) {
        tracing::info!("added to an allowed group");
        return Ok(());
    }
    tracing::info!("added to a group that is not allowed");
    if app.first_refusal(chat) {
        telegram::send(&bot, chat, &not_allowed_here(chat)).await?;
    }
    Ok(())
}
