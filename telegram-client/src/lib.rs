//! `moai-telegram`: the moai roundtable in a Telegram chat.
//!
//! A thin client of the moai gRPC API. It acts with a gateway key for each
//! Telegram user in their private chat (`x-moai-user: telegram:<id>`) and
//! for each group in the group (`telegram-group:<chat id>`), renders the
//! discussion event stream as live messages, and keeps only per-chat
//! selections of its own. [`run`] is the whole bot; the binary only reads
//! the environment.

pub mod actor;
pub mod api;
pub mod chat_pace;
pub mod commands;
pub mod config;
pub mod error;
pub mod handlers;
pub mod live_message;
pub mod render;
pub mod resume;
pub mod runs;
pub mod state;
pub mod stream;
pub mod telegram;
pub mod throttle;

use std::{sync::Arc, time::Duration};

use secrecy::ExposeSecret;
use teloxide::{
    Bot,
    dispatching::{Dispatcher, UpdateHandlerTracingExt},
    dptree,
    error_handlers::LoggingErrorHandler,
    prelude::Requester,
    types::Update,
    update_listeners::Polling,
    utils::command::BotCommands,
};

use crate::{api::Moai, commands::Command, handlers::App, state::FileStorage};
pub use crate::{
    config::{Allowlist, ChatAllowlist, Config},
    error::BotError,
    handlers::Access,
};

/// Runs the bot until `shutdown` completes: long polling, one task per run
/// being rendered. Then it stops taking updates, lets the answers it shows
/// end within `config.shutdown_grace` (answers still coming then get a last
/// edit and are finished after a restart), saves its state and returns. The
/// runs themselves belong to the server and go on.
///
/// # Errors
/// A setting that cannot be used, a state file that cannot be opened, or a
/// Bot API that does not answer `getMe`.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), BotError> {
    if config.allowlist.is_empty() && config.allowed_chats.is_empty() {
        tracing::warn!(
            "MOAI_TELEGRAM_ALLOWED_USERS and MOAI_TELEGRAM_ALLOWED_CHATS are empty: the bot will \
             refuse everyone. List the Telegram user ids allowed to use it, separated by commas."
        );
    } else {
        tracing::info!(
            users = config.allowlist.len(),
            chats = config.allowed_chats.len(),
            "allowlist loaded"
        );
    }
    let store = FileStorage::open(&config.state_path).await?;
    tracing::info!(path = %store.path().display(), "per-chat state loaded");
    let moai = Moai::connect_lazy(&config.server, &config.api_key, &config.tls)?;

    let mut bot = Bot::new(config.token.expose_secret());
    if let Some(url) = config.api_url.clone() {
        bot = bot.set_api_url(url);
    }
    if let Err(e) = bot.set_my_commands(Command::bot_commands()).await {
        tracing::warn!(error = %e, "could not set the command menu");
    }

    let access = Access {
        users: config.allowlist.clone(),
        chats: config.allowed_chats.clone(),
    };
    let mut app = App::new(
        moai,
        store.clone(),
        access,
        config.edit_interval,
        config.typing_interval,
    );
    app.group_messages_per_minute = config.group_messages_per_minute;
    let app = Arc::new(app);
    // Every update's handling, spawned runs included, is logged under its id.
    let handler = handlers::schema()
        .instrument_with(|update: Update| tracing::info_span!("update", update_id = update.id.0));
    let mut dispatcher = Dispatcher::builder(bot.clone(), handler)
        .dependencies(dptree::deps![app.clone()])
        .default_handler(|update| async move {
            tracing::debug!(update_id = update.id.0, "ignored an update");
        })
        .error_handler(LoggingErrorHandler::with_custom_text("a handler failed"))
        .build();

    let resuming = tokio::spawn(resume::resume_runs(bot.clone(), app.clone()));

    let token = dispatcher.shutdown_token();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: no more updates; letting the answers shown end");
        // The dispatcher refuses to stop before it has started: try again shortly.
        loop {
            match token.shutdown() {
                Ok(done) => {
                    done.await;
                    return;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });

    let listener = Polling::builder(bot.clone())
        .timeout(config.poll_timeout)
        .delete_webhook()
        .await
        .build();
    let result = dispatcher
        .try_dispatch_with_listener(
            listener,
            LoggingErrorHandler::with_custom_text("polling failed"),
        )
        .await;
    resuming.abort();
    app.runs.wind_down(config.shutdown_grace).await;
    store.save().await?;
    tracing::info!("stopped");
    result.map_err(BotError::from)
}
