//! The handler tree: who may talk to the bot, then what each update means.

mod access;
mod callbacks;
mod discussion;
mod projects;
mod review;

use std::{collections::HashSet, sync::Arc, time::Duration};

use moai_proto::v1::Project;
use teloxide::{
    dispatching::{UpdateFilterExt, UpdateHandler},
    dptree,
    types::{ChatId, Me, Message, Update, User, UserId},
};
use tonic::{Code, Status};

use crate::{
    api::{Moai, UserApi},
    commands::{self, Command},
    config::Allowlist,
    error::{BotError, friendly},
    render::html::escape,
    runs::{Runs, Started},
    state::{ChatState, FileStorage},
    stream::RunView,
    telegram::{self, Tg},
};

/// How long a queued run waits before the chat is told it is queued.
const QUEUE_NOTICE_AFTER: Duration = Duration::from_millis(1500);

/// What every handler returns; errors are Telegram or state-file failures
/// (moai API errors are told to the user instead).
pub type HandlerResult = Result<(), BotError>;

/// Everything the handlers share.
pub struct App {
    /// The moai server.
    pub moai: Moai,
    /// Per-chat state.
    pub store: Arc<FileStorage>,
    /// Runs being rendered.
    pub runs: Runs,
    /// Who may use the bot.
    pub allowlist: Allowlist,
    /// Users already told they are not allowed (told once).
    refused: std::sync::Mutex<HashSet<UserId>>,
    /// Shortest time between two edits of one message in a private chat.
    pub edit_interval: Duration,
    /// How often "typing…" is re-sent.
    pub typing_interval: Duration,
}

impl App {
    /// Shared state for the handlers.
    #[must_use]
    pub fn new(
        moai: Moai,
        store: Arc<FileStorage>,
        allowlist: Allowlist,
        edit_interval: Duration,
        typing_interval: Duration,
    ) -> Self {
        App {
            moai,
            store,
            runs: Runs::default(),
            allowlist,
            refused: std::sync::Mutex::default(),
            edit_interval,
            typing_interval,
        }
    }
}

/// A message's text, as a dependency of its own type.
#[derive(Clone)]
struct Text(String);

/// The bot's handler tree.
#[must_use]
pub fn schema() -> UpdateHandler<BotError> {
    dptree::entry()
        .filter_map(|update: Update| update.from().cloned())
        .branch(
            dptree::filter(|user: User, app: Arc<App>| !app.allowlist.allows(user.id))
                .endpoint(access::refuse),
        )
        .branch(
            Update::filter_message()
                .filter_map(|msg: Message| msg.text().map(|t| Text(t.to_owned())))
                .endpoint(on_text),
        )
        .branch(Update::filter_callback_query().endpoint(callbacks::on_callback))
}

/// One update being handled: who, where, and the chat's state.
pub struct Ctx {
    bot: Tg,
    chat: ChatId,
    user: UserId,
    api: UserApi,
    app: Arc<App>,
    state: ChatState,
    private: bool,
}

impl Ctx {
    async fn new(bot: Tg, chat: ChatId, private: bool, user: &User, app: Arc<App>) -> Self {
        let api = app.moai.for_user(user.id);
        let state = app.store.get(chat).await;
        Ctx {
            bot,
            chat,
            user: user.id,
            api,
            app,
            state,
            private,
        }
    }

    /// Sends an HTML reply (split if long).
    async fn reply(&self, html: &str) -> HandlerResult {
        telegram::send_long(&self.bot, self.chat, html).await?;
        Ok(())
    }

    /// Tells the user a moai API error in one friendly line.
    async fn fail(&self, status: &Status) -> HandlerResult {
        tracing::info!(code = ?status.code(), message = status.message(), "moai API error");
        self.reply(&format!("⚠️ {}", escape(&friendly(status))))
            .await
    }

    /// Changes and saves the chat's state.
    async fn save(&mut self, change: impl FnOnce(&mut ChatState)) -> HandlerResult {
        self.state = self.app.store.modify(self.chat, change).await?;
        Ok(())
    }

    /// How a run in this chat is rendered. Groups get slower edits.
    fn view(&self) -> RunView {
        let factor = if self.private { 1 } else { 3 };
        RunView {
            bot: self.bot.clone(),
            chat: self.chat,
            user: self.user,
            api: self.api.clone(),
            store: self.app.store.clone(),
            edit_interval: self.app.edit_interval * factor,
            typing_interval: self.app.typing_interval,
        }
    }

    /// The current project, fetched; tells the user and returns `None` when
    /// there is none (or it is gone).
    async fn project(&mut self) -> Result<Option<Project>, BotError> {
        let Some(id) = self.state.project_id().map(ToOwned::to_owned) else {
            self.reply("No project selected. Create one with /new &lt;name&gt; [model ...] or pick one with /use &lt;name&gt;.")
                .await?;
            return Ok(None);
        };
        match self.api.get_project(&id).await {
            Ok(project) => Ok(Some(project)),
            Err(status) if status.code() == Code::NotFound && self.private => {
                self.save(ChatState::forget_project).await?;
                self.reply("Your current project no longer exists. /projects lists yours.")
                    .await?;
                Ok(None)
            }
            // In a group the chat's project may be another member's (projects
            // belong to users): leave the selection alone.
            Err(status) if status.code() == Code::NotFound => {
                self.reply("This chat's project is not one of yours (or is gone). /use one of yours: /projects lists them.")
                    .await?;
                Ok(None)
            }
            Err(status) => {
                self.fail(&status).await?;
                Ok(None)
            }
        }
    }

    /// The current discussion's id; tells the user and returns `None` when there is none.
    async fn discussion_id(&self) -> Result<Option<String>, BotError> {
        if let Some(id) = &self.state.discussion_id {
            return Ok(Some(id.clone()));
        }
        self.reply("No current discussion. Start one with /open &lt;question&gt; or /discuss &lt;topic&gt;.")
            .await?;
        Ok(None)
    }

    /// Starts rendering a run, after the one going in this chat, if any.
    async fn start_run(
        &self,
        what: &str,
        run: impl Future<Output = ()> + Send + 'static,
    ) -> HandlerResult {
        match self.app.runs.start(self.chat, what, run) {
            Ok(Started::Now) => Ok(()),
            Ok(Started::Queued(going)) => {
                // A run that is only finishing its last edits is not worth a
                // notice; one still going a moment later is.
                let (runs, bot, chat) = (self.app.runs.clone(), self.bot.clone(), self.chat);
                tokio::spawn(async move {
                    tokio::time::sleep(QUEUE_NOTICE_AFTER).await;
                    if runs
                        .current(chat)
                        .is_some_and(|(what, queued)| what == going && queued > 0)
                    {
                        let text = format!(
                            "⏳ Queued: this starts when the current run ({}) ends. /stop ends it now.",
                            escape(&going)
                        );
                        if let Err(e) = telegram::send(&bot, chat, &text).await {
                            tracing::debug!(error = %e, "could not send the queue notice");
                        }
                    }
                });
                Ok(())
            }
            Err(going) => {
                self.reply(&format!(
                    "Too many requests are waiting in this chat behind the current run ({}). \
                     Wait for it, or /stop it.",
                    escape(&going)
                ))
                .await
            }
        }
    }
}

#[tracing::instrument(skip_all, fields(chat = msg.chat.id.0, user = user.id.0))]
async fn on_text(
    bot: Tg,
    msg: Message,
    text: Text,
    user: User,
    me: Me,
    app: Arc<App>,
) -> HandlerResult {
    let mut ctx = Ctx::new(bot, msg.chat.id, msg.chat.is_private(), &user, app).await;
    let text = text.0;
    if let Some(command) = commands::parse(&text, me.username()) {
        tracing::debug!(?command, "command");
        return run_command(&mut ctx, command).await;
    }
    if text.trim_start().starts_with('/') {
        if ctx.private {
            let name = text.split_whitespace().next().unwrap_or_default();
            ctx.reply(&format!(
                "Unknown command {}. /help lists them all.",
                escape(name)
            ))
            .await?;
        }
        return Ok(());
    }
    if let Some(model) = msg
        .reply_to_message()
        .and_then(|replied| answer_author(replied, &me))
    {
        return discussion::mention(&mut ctx, &model, text.trim()).await;
    }
    if let Some((model, content)) = commands::parse_mention(&text)
        && !model.eq_ignore_ascii_case(me.username())
    {
        return discussion::mention(&mut ctx, &model, &content).await;
    }
    if ctx.private {
        ctx.reply("Ask all models with /open &lt;question&gt;, or one of them with @model &lt;message&gt;. /help lists everything.")
            .await?;
    }
    Ok(())
}

/// The model that wrote one of the bot's answer messages, read from its
/// header, so that replying to an answer talks to that model.
fn answer_author(message: &Message, me: &Me) -> Option<String> {
    if message
        .from
        .as_ref()
        .is_none_or(|from| from.id != me.user.id)
    {
        return None;
    }
    let first_line = message.text()?.lines().next()?;
    let header = first_line
        .strip_prefix("🤖 ")
        .or_else(|| first_line.strip_prefix("🧾 Consensus · "))?;
    let model = header.split(' ').next()?;
    (!model.is_empty()).then(|| model.to_owned())
}

async fn run_command(ctx: &mut Ctx, command: Command) -> HandlerResult {
    match command {
        Command::Start | Command::Help => ctx.reply(&commands::help_html()).await,
        Command::Projects => projects::list(ctx).await,
        Command::New(args) => projects::create(ctx, &args).await,
        Command::Use(name) => projects::select(ctx, &name).await,
        Command::Project => projects::show(ctx).await,
        Command::Rename(name) => projects::rename(ctx, &name).await,
        Command::Delete(name) => projects::delete(ctx, &name).await,
        Command::Models => projects::models(ctx).await,
        Command::Addmodel(ids) => projects::edit_models(ctx, &ids, true).await,
        Command::Removemodel(ids) => projects::edit_models(ctx, &ids, false).await,
        Command::Available => projects::available(ctx).await,
        Command::Open(question) => discussion::open(ctx, &question).await,
        Command::Discuss(args) => discussion::discuss(ctx, &args).await,
        Command::Next => discussion::next(ctx).await,
        Command::Stop => discussion::stop(ctx).await,
        Command::Consensus(model) => discussion::consensus(ctx, &model).await,
        Command::Review(round) => review::review(ctx, &round).await,
        Command::Export(format) => discussion::export(ctx, &format).await,
        Command::Status => discussion::status(ctx).await,
    }
}
