//! The handler tree: group migrations, who may talk to the bot, then what
//! each update means.

mod access;
mod callbacks;
mod discussion;
mod fallback;
mod projects;
mod review;

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, PoisonError},
    time::Duration,
};

use moai_proto::v1::Project;
use teloxide::{
    dispatching::{UpdateFilterExt, UpdateHandler},
    dptree,
    types::{ChatId, Me, Message, Update, User, UserId},
};
use tonic::{Code, Status};

pub use self::access::Access;
use crate::{
    actor::Actor,
    api::{Moai, UserApi},
    chat_pace::ChatPace,
    commands::{self, Command},
    error::{BotError, friendly},
    render::html::escape,
    runs::{Runs, Started},
    state::{ChatState, FileStorage},
    stream::RunView,
    telegram::{self, Tg},
};

/// How long a queued run waits before the chat is told it is queued.
const QUEUE_NOTICE_AFTER: Duration = Duration::from_millis(1500);

/// Longest member name sent with a message to a model.
const MAX_AUTHOR_NAME_CHARS: usize = 128;

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
    /// Who may use the bot, and where.
    pub access: Access,
    /// Chats already told they (or their member) may not use the bot: told once.
    refused: std::sync::Mutex<HashSet<ChatId>>,
    /// The turns of each chat's live answers.
    paces: std::sync::Mutex<HashMap<ChatId, Arc<ChatPace>>>,
    /// Shortest time between two edits of one message in a private chat.
    pub edit_interval: Duration,
    /// How often "typing…" is re-sent.
    pub typing_interval: Duration,
    /// Messages a minute the bot allows itself in one group.
    pub group_messages_per_minute: u32,
}

impl App {
    /// Shared state for the handlers.
    #[must_use]
    pub fn new(
        moai: Moai,
        store: Arc<FileStorage>,
        access: Access,
        edit_interval: Duration,
        typing_interval: Duration,
    ) -> Self {
        App {
            moai,
            store,
            runs: Runs::default(),
            access,
            refused: std::sync::Mutex::default(),
            paces: std::sync::Mutex::default(),
            edit_interval,
            typing_interval,
            group_messages_per_minute: crate::config::DEFAULT_GROUP_MESSAGES_PER_MINUTE,
        }
    }

    /// The turns of `chat`'s live answers, shared by every run shown there.
    pub fn pace(&self, chat: ChatId) -> Arc<ChatPace> {
        let mut paces = self.paces.lock().unwrap_or_else(PoisonError::into_inner);
        paces
            .entry(chat)
            .or_insert_with(|| {
                Arc::new(if chat.is_user() {
                    ChatPace::unlimited()
                } else {
                    ChatPace::for_group(self.group_messages_per_minute)
                })
            })
            .clone()
    }

    /// How a run in `chat` is rendered, acting with `api` for `user`'s
    /// request. Groups get slower edits.
    pub fn view(&self, bot: Tg, chat: ChatId, user: UserId, api: UserApi) -> RunView {
        let factor = if chat.is_user() { 1 } else { 3 };
        RunView {
            bot,
            chat,
            user,
            api,
            store: self.store.clone(),
            edit_interval: self.edit_interval * factor,
            typing_interval: self.typing_interval,
            pace: self.pace(chat),
            pause: self.runs.pause_token(),
        }
    }
}

/// A message's text, as a dependency of its own type.
#[derive(Clone)]
struct Text(String);

/// A group that became a supergroup: the old and the new chat id.
#[derive(Clone, Copy)]
struct Migration {
    from: ChatId,
    to: ChatId,
}

/// Telegram announces a migration in the old group (`migrate_to_chat_id`)
/// and in the new supergroup (`migrate_from_chat_id`).
fn migration(msg: Message) -> Option<Migration> {
    if let Some(to) = msg.migrate_to_chat_id() {
        return Some(Migration {
            from: msg.chat.id,
            to: *to,
        });
    }
    msg.migrate_from_chat_id().map(|from| Migration {
        from: *from,
        to: msg.chat.id,
    })
}

/// The bot's handler tree.
#[must_use]
pub fn schema() -> UpdateHandler<BotError> {
    dptree::entry()
        .branch(
            Update::filter_message()
                .filter_map(migration)
                .endpoint(migrate),
        )
        .branch(Update::filter_my_chat_member().endpoint(access::joined))
        .filter_map(|update: Update| update.from().cloned())
        .branch(
            dptree::filter_async(|update: Update, user: User, app: Arc<App>| async move {
                !app.may_use(&update, &user).await
            })
            .endpoint(access::refuse),
        )
        .branch(
            Update::filter_message()
                .filter_map(|msg: Message| msg.text().map(|t| Text(t.to_owned())))
                .endpoint(on_text),
        )
        .branch(Update::filter_callback_query().endpoint(callbacks::on_callback))
}

/// Moves a group's state to its new supergroup, so it keeps its projects.
#[tracing::instrument(skip_all, fields(from = migration.from.0, to = migration.to.0))]
async fn migrate(migration: Migration, app: Arc<App>) -> HandlerResult {
    tracing::info!("a group became a supergroup");
    app.store.migrate(migration.from, migration.to).await?;
    Ok(())
}

/// One update being handled: who, where, and the chat's state.
pub struct Ctx {
    bot: Tg,
    chat: ChatId,
    user: UserId,
    /// The member's name, kept with what they say to a model.
    author_name: String,
    /// The API acting for the chat: the user, or the whole group.
    api: UserApi,
    app: Arc<App>,
    state: ChatState,
    private: bool,
}

impl Ctx {
    async fn new(bot: Tg, chat: ChatId, user: &User, app: Arc<App>) -> Self {
        let state = app.store.get(chat).await;
        let api = app.moai.acting_for(Actor::of(chat, &state));
        let author_name = user
            .full_name()
            .trim()
            .chars()
            .take(MAX_AUTHOR_NAME_CHARS)
            .collect();
        Ctx {
            bot,
            chat,
            user: user.id,
            author_name,
            api,
            app,
            state,
            private: chat.is_user(),
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

    /// How a run in this chat is rendered.
    fn view(&self) -> RunView {
        self.app
            .view(self.bot.clone(), self.chat, self.user, self.api.clone())
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
            Err(status) if status.code() == Code::NotFound => {
                self.save(ChatState::forget_project).await?;
                self.reply("The current project no longer exists. /projects lists the others.")
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
    let mut ctx = Ctx::new(bot, msg.chat.id, &user, app).await;
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
    if let Some(replied) = msg.reply_to_message()
        && let Some(model) = answer_author(replied, &me)
    {
        // The answer's own discussion, else (an answer from before the bot
        // remembered them) the chat's current one.
        let discussion_id = ctx.state.answers.get(&replied.id.0).cloned();
        return discussion::reply_to_answer(&mut ctx, discussion_id, &model, text.trim()).await;
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
        Command::Fallback(args) => fallback::fallback(ctx, &args).await,
        Command::Open(question) => discussion::open(ctx, &question).await,
        Command::Discuss(args) => discussion::discuss(ctx, &args).await,
        Command::Next => discussion::next(ctx).await,
        Command::Stop => discussion::stop(ctx).await,
        Command::Ask(args) => discussion::ask(ctx, &args).await,
        Command::Consensus(model) => discussion::consensus(ctx, &model).await,
        Command::Review(round) => review::review(ctx, &round).await,
        Command::Export(format) => discussion::export(ctx, &format).await,
        Command::Status => discussion::status(ctx).await,
        Command::Usage => projects::usage(ctx).await,
    }
}
