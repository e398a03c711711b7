//! Picking up after a restart: answers the bot was showing are finished in
//! the messages they started in, and runs still going are followed again, so
//! no answer is left half-written in a chat.

use std::{collections::BTreeMap, sync::Arc};

use moai_proto::v1::DiscussionStatus;
use teloxide::types::{ChatId, UserId};
use tonic::Code;

use crate::{
    actor::Actor,
    handlers::App,
    state::ChatState,
    stream,
    telegram::{self, Tg},
};

/// What to pick up in one discussion: who asked for the run (if known),
/// and the answers shown (moai message id → Telegram message ids).
struct Pickup {
    user: Option<u64>,
    shown: BTreeMap<String, Vec<i32>>,
}

/// The discussions of a chat worth a look: those with answers being shown,
/// and the current one.
fn pickups(chat: ChatId, state: &ChatState) -> BTreeMap<String, Pickup> {
    let mut pickups: BTreeMap<String, Pickup> = BTreeMap::new();
    for (message_id, live) in &state.live {
        pickups
            .entry(live.discussion_id.clone())
            .or_insert_with(|| Pickup {
                user: Some(live.user),
                shown: BTreeMap::new(),
            })
            .shown
            .insert(message_id.clone(), live.messages.clone());
    }
    if let Some(discussion_id) = &state.discussion_id {
        // In a private chat the chat is the user.
        pickups
            .entry(discussion_id.clone())
            .or_insert_with(|| Pickup {
                user: chat.as_user().map(|user| user.0),
                shown: BTreeMap::new(),
            });
    }
    pickups
}

/// Looks at every chat's discussions and resumes what needs it.
pub async fn resume_runs(bot: Tg, app: Arc<App>) {
    for (chat, state) in app.store.all().await {
        for (discussion_id, pickup) in pickups(chat, &state) {
            resume(&bot, &app, chat, &state, &discussion_id, pickup).await;
        }
    }
}

async fn resume(
    bot: &Tg,
    app: &Arc<App>,
    chat: ChatId,
    state: &ChatState,
    discussion_id: &str,
    pickup: Pickup,
) {
    let user = pickup.user.map(UserId);
    if !app.access.allows(chat, state, user) {
        return;
    }
    let mut api = app.moai.acting_for(Actor::of(chat, state));
    let discussion = match api.get_discussion(discussion_id).await {
        Ok(discussion) => discussion,
        Err(status) if status.code() == Code::NotFound => {
            let forget = |state: &mut ChatState| {
                state
                    .live
                    .retain(|_, live| live.discussion_id != discussion_id)
            };
            if let Err(e) = app.store.modify(chat, forget).await {
                tracing::warn!(error = %e, "could not clear the answers of a deleted discussion");
            }
            return;
        }
        Err(status) => {
            tracing::debug!(chat = chat.0, code = ?status.code(), "cannot check a discussion to resume");
            return;
        }
    };
    let running = discussion.status == DiscussionStatus::Running as i32;
    if !running && pickup.shown.is_empty() {
        return;
    }
    tracing::info!(chat = chat.0, discussion = %discussion.id, running, "resuming after a restart");
    let view = app.view(bot.clone(), chat, user.unwrap_or(UserId(0)), api);
    let notice = bot.clone();
    let started = app.runs.start(chat, "resumed after a restart", async move {
        if running {
            let text = "↻ I restarted while the models were answering; following them again.";
            if let Err(e) = telegram::send(&notice, chat, text).await {
                tracing::debug!(error = %e, "could not send the resume notice");
            }
        }
        stream::resume(view, discussion, pickup.shown).await;
    });
    if started.is_err() {
        tracing::debug!(chat = chat.0, "a run is already shown in this chat");
    }
}
