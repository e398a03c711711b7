//! Inline-button presses: selecting a project, confirming a deletion,
//! stopping a run, and ending an idle discussion for good.

use std::sync::Arc;

use teloxide::{
    payloads::AnswerCallbackQuerySetters,
    prelude::Requester,
    types::{CallbackQuery, User},
};
use tonic::Code;

use super::{App, Ctx, HandlerResult, projects};
use crate::{
    error::friendly,
    render::html::escape,
    state::ChatState,
    telegram::{self, Tg},
};

#[tracing::instrument(skip_all, fields(user = user.id.0, data = query.data.as_deref()))]
pub(super) async fn on_callback(
    bot: Tg,
    query: CallbackQuery,
    user: User,
    app: Arc<App>,
) -> HandlerResult {
    let Some(message) = query.message.as_ref() else {
        bot.answer_callback_query(query.id).await?;
        return Ok(());
    };
    let (chat, message_id) = (message.chat().id, message.id());
    let mut ctx = Ctx::new(bot.clone(), chat, &user, app).await;
    let data = query.data.clone().unwrap_or_default();
    // An error is shown as an alert; a confirmation as a passing toast.
    let mut notice = None;
    let mut toast = None;
    if let Some(project_id) = data.strip_prefix("use:") {
        match ctx.api.get_project(project_id).await {
            Ok(project) => projects::select_project(&mut ctx, &project).await?,
            Err(status) => notice = Some(friendly(&status)),
        }
    } else if let Some(project_id) = data.strip_prefix("del:") {
        let name = match ctx.api.get_project(project_id).await {
            Ok(project) => project.name,
            Err(status) if status.code() == Code::NotFound => String::new(),
            Err(status) => {
                notice = Some(friendly(&status));
                String::new()
            }
        };
        if notice.is_none() {
            let result = if name.is_empty() {
                Ok(())
            } else {
                ctx.api.delete_project(project_id).await
            };
            match result {
                Ok(()) => {
                    if ctx.state.project_id() == Some(project_id) {
                        ctx.save(ChatState::forget_project).await?;
                    }
                    let text = if name.is_empty() {
                        "That project was already gone.".to_owned()
                    } else {
                        format!("🗑 Deleted <b>{}</b>.", escape(&name))
                    };
                    telegram::edit(&bot, chat, message_id, &text).await?;
                }
                Err(status) => notice = Some(friendly(&status)),
            }
        }
    } else if let Some(discussion_id) = data.strip_prefix("stop:") {
        match ctx.api.stop_discussion(discussion_id).await {
            Ok(_) => {
                toast = Some("⏹ Stopping…");
                ctx.reply(super::discussion::STOPPED).await?;
            }
            Err(status) => notice = Some(friendly(&status)),
        }
    } else if let Some(discussion_id) = data.strip_prefix("close:") {
        match ctx.api.stop_discussion(discussion_id).await {
            Ok(_) => {
                telegram::edit(&bot, chat, message_id, super::discussion::CLOSED).await?;
            }
            Err(status) => notice = Some(friendly(&status)),
        }
    } else if data == "keep" {
        telegram::edit(&bot, chat, message_id, "Kept: the discussion goes on.").await?;
    } else if data == "cancel" {
        telegram::edit(&bot, chat, message_id, "Cancelled: nothing was deleted.").await?;
    }
    let mut answer = bot.answer_callback_query(query.id);
    if let Some(notice) = notice {
        answer = answer.text(notice).show_alert(true);
    } else if let Some(toast) = toast {
        answer = answer.text(toast);
    }
    answer.await?;
    Ok(())
}
