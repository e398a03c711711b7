//! Runs that were going when the bot stopped: after a restart the bot
//! follows them again, so no answer is left half-written in a chat.

use std::sync::Arc;

use moai_proto::v1::DiscussionStatus;
use teloxide::types::UserId;

use crate::{
    handlers::App,
    stream::{self, RunView},
    telegram::{self, Tg},
};

/// Follows again every run still going in a private chat's current
/// discussion (in a private chat the chat is the user the bot acts for).
pub async fn resume_runs(bot: Tg, app: Arc<App>) {
    for (chat, state) in app.store.all().await {
        let Some(discussion_id) = state.discussion_id else {
            continue;
        };
        let Ok(user) = u64::try_from(chat.0) else {
            continue;
        };
        if !app.allowlist.allows(UserId(user)) {
            continue;
        }
        let mut api = app.moai.for_user(UserId(user));
        let discussion = match api.get_discussion(&discussion_id).await {
            Ok(discussion) => discussion,
            Err(status) => {
                tracing::debug!(chat = chat.0, code = ?status.code(), "cannot check for a run to resume");
                continue;
            }
        };
        if discussion.status != DiscussionStatus::Running as i32 {
            continue;
        }
        tracing::info!(chat = chat.0, discussion = %discussion.id, "resuming a run after a restart");
        let view = RunView {
            bot: bot.clone(),
            chat,
            api,
            store: app.store.clone(),
            edit_interval: app.edit_interval,
            typing_interval: app.typing_interval,
        };
        let notice = bot.clone();
        let started = app.runs.start(chat, "resumed after a restart", async move {
            let text =
                "↻ I restarted while the models were answering; their answers continue below.";
            if let Err(e) = telegram::send(&notice, chat, text).await {
                tracing::debug!(error = %e, "could not send the resume notice");
            }
            stream::resume(view, discussion).await;
        });
        if started.is_err() {
            tracing::debug!(chat = chat.0, "a run is already shown in this chat");
        }
    }
}
