//! Users not on the allowlist: one polite refusal, and nothing of theirs
//! reaches the moai server.

use std::sync::{Arc, PoisonError};

use teloxide::{
    payloads::AnswerCallbackQuerySetters,
    prelude::Requester,
    types::{Update, UpdateKind, User},
};

use super::{App, HandlerResult};
use crate::telegram::{self, Tg};

#[tracing::instrument(skip_all, fields(user = user.id.0))]
pub(super) async fn refuse(bot: Tg, update: Update, user: User, app: Arc<App>) -> HandlerResult {
    let first_time = app
        .refused
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(user.id);
    tracing::info!(first_time, "refused a user who is not on the allowlist");
    match update.kind {
        UpdateKind::CallbackQuery(query) => {
            bot.answer_callback_query(query.id)
                .text("Sorry, this bot is private.")
                .await?;
        }
        UpdateKind::Message(msg) if first_time && msg.chat.is_private() => {
            let text = format!(
                "Sorry, this bot is private. If you should have access, ask its operator to add \
                 your Telegram user id <code>{}</code> to the allowlist.",
                user.id.0
            );
            telegram::send(&bot, msg.chat.id, &text).await?;
        }
        _ => {}
    }
    Ok(())
}
