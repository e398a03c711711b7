//! Discussion commands: every run is rendered by a task of its own (see
//! [`crate::runs`]), so the handler returns at once and `/stop` gets through.

use moai_proto::v1::{DiscussionStatus, ExportFormat, StartDiscussionRequest};
use teloxide::{
    payloads::SendDocumentSetters,
    prelude::Requester,
    types::{InlineKeyboardButton, InlineKeyboardMarkup, InputFile},
};

use super::{Ctx, HandlerResult};
use crate::{
    commands::{self, ExportChoice},
    render::html::escape,
    stream,
    telegram::{self, retry_after},
};

/// Most rounds one `/discuss` may ask for.
const MAX_ROUNDS: u32 = 10;

pub(super) async fn open(ctx: &mut Ctx, question: &str) -> HandlerResult {
    if question.is_empty() {
        return ctx
            .reply(
                "Usage: /open &lt;question&gt;, e.g. <code>/open Is a hot dog a sandwich?</code>",
            )
            .await;
    }
    let Some(project_id) = current_project_id(ctx).await? else {
        return Ok(());
    };
    let mut api = ctx.api.clone();
    let question = question.to_owned();
    let view = ctx.view();
    ctx.start_run("models answering", async move {
        let start = async move { api.open_discussion(&project_id, &question).await };
        let outcome = stream::render(view.clone(), None, start).await;
        if outcome.error.is_none()
            && !outcome.paused
            && outcome.status != Some(DiscussionStatus::Stopped)
        {
            let hint = "Next: /discuss lets them discuss it in turns, /consensus sums up, @model asks one of them.";
            if let Err(e) = crate::telegram::send(&view.bot, view.chat, hint).await {
                tracing::debug!(error = %e, "could not send the hint");
            }
        }
    })
    .await
}

pub(super) async fn discuss(ctx: &mut Ctx, args: &str) -> HandlerResult {
    let (rounds, topic) = commands::parse_discuss(args);
    if let Some(rounds) = rounds.filter(|r| !(1..=MAX_ROUNDS).contains(r)) {
        return ctx
            .reply(&format!(
                "Rounds must be between 1 and {MAX_ROUNDS}, not {rounds}."
            ))
            .await;
    }
    let mut request = StartDiscussionRequest {
        rounds: rounds.unwrap_or(0),
        ..Default::default()
    };
    let known = if topic.is_empty() {
        let Some(discussion_id) = ctx.discussion_id().await? else {
            return Ok(());
        };
        request.discussion_id = discussion_id.clone();
        Some(discussion_id)
    } else {
        let Some(project_id) = current_project_id(ctx).await? else {
            return Ok(());
        };
        request.project_id = project_id;
        request.topic = topic;
        None
    };
    let mut api = ctx.api.clone();
    let view = ctx.view();
    ctx.start_run("discussion in turns", async move {
        stream::render(
            view,
            known,
            async move { api.start_discussion(request).await },
        )
        .await;
    })
    .await
}

pub(super) async fn next(ctx: &mut Ctx) -> HandlerResult {
    let Some(discussion_id) = ctx.discussion_id().await? else {
        return Ok(());
    };
    let mut api = ctx.api.clone();
    let view = ctx.view();
    let known = Some(discussion_id.clone());
    ctx.start_run("another round", async move {
        stream::render(
            view,
            known,
            async move { api.next_round(&discussion_id).await },
        )
        .await;
    })
    .await
}

/// What the chat is told when a discussion stops.
pub(super) const STOPPED: &str =
    "⏹ Stopped. Partial answers are kept; /open or /discuss &lt;topic&gt; starts a new discussion.";

/// What the chat is told when an idle discussion is ended for good.
pub(super) const CLOSED: &str = "⏹ Ended for good: this discussion takes no more rounds. \
     /open or /discuss &lt;topic&gt; starts a new one.";

/// `/stop`: stops a running run; with nothing running it changes nothing and
/// asks, with a button, whether to end the discussion for good (the server's
/// StopDiscussion would end it either way).
pub(super) async fn stop(ctx: &mut Ctx) -> HandlerResult {
    let Some(discussion_id) = ctx.discussion_id().await? else {
        return Ok(());
    };
    let status = match ctx.api.get_discussion(&discussion_id).await {
        Ok(d) => DiscussionStatus::try_from(d.status).unwrap_or_default(),
        Err(status) => return ctx.fail(&status).await,
    };
    match status {
        DiscussionStatus::Running => match ctx.api.stop_discussion(&discussion_id).await {
            Ok(_) => ctx.reply(STOPPED).await,
            Err(status) => ctx.fail(&status).await,
        },
        DiscussionStatus::Stopped => ctx.reply("This discussion is already stopped.").await,
        _ => {
            let buttons = InlineKeyboardMarkup::new([[
                InlineKeyboardButton::callback(
                    "⏹ End it for good",
                    format!("close:{discussion_id}"),
                ),
                InlineKeyboardButton::callback("Keep it", "keep"),
            ]]);
            telegram::send_with_markup(
                &ctx.bot,
                ctx.chat,
                "Nothing is running. End this discussion for good? It then takes no more \
                 rounds, mentions or summaries.",
                buttons,
            )
            .await?;
            Ok(())
        }
    }
}

pub(super) async fn consensus(ctx: &mut Ctx, model: &str) -> HandlerResult {
    let Some(discussion_id) = ctx.discussion_id().await? else {
        return Ok(());
    };
    let mut api = ctx.api.clone();
    let view = ctx.view();
    let known = Some(discussion_id.clone());
    let model = model.to_owned();
    ctx.start_run("consensus summary", async move {
        stream::render(view, known, async move {
            api.summarize(&discussion_id, &model).await
        })
        .await;
    })
    .await
}

pub(super) async fn ask(ctx: &mut Ctx, args: &str) -> HandlerResult {
    match commands::parse_ask(args) {
        Some((model, content)) => mention(ctx, &model, &content).await,
        None => {
            ctx.reply(
                "Usage: /ask &lt;model&gt; &lt;message&gt;, e.g. <code>/ask gpt-4o why?</code>",
            )
            .await
        }
    }
}

/// A reply to a model's answer: talks to that model (its exact id, from the
/// answer's header) in the answer's discussion, else the current one.
pub(super) async fn reply_to_answer(
    ctx: &mut Ctx,
    discussion_id: Option<String>,
    model: &str,
    content: &str,
) -> HandlerResult {
    if content.is_empty() {
        return Ok(());
    }
    let discussion_id = match discussion_id {
        Some(id) => id,
        None => match ctx.discussion_id().await? {
            Some(id) => id,
            None => return Ok(()),
        },
    };
    start_mention(ctx, discussion_id, model.to_owned(), content).await
}

pub(super) async fn mention(ctx: &mut Ctx, model: &str, content: &str) -> HandlerResult {
    if content.is_empty() {
        return ctx
            .reply(&format!(
                "What do you want to tell {}? <code>@model your message</code>",
                escape(model)
            ))
            .await;
    }
    let Some(discussion_id) = ctx.discussion_id().await? else {
        return Ok(());
    };
    let Some(project) = ctx.project().await? else {
        return Ok(());
    };
    let Some(model) = resolve_model(&project.models, model) else {
        let known = project
            .models
            .iter()
            .map(|m| format!("@{}", escape(m)))
            .collect::<Vec<_>>()
            .join(", ");
        return ctx
            .reply(&format!(
                "No model {} in this project. Its models: {known}",
                escape(model)
            ))
            .await;
    };
    start_mention(ctx, discussion_id, model, content).await
}

async fn start_mention(
    ctx: &mut Ctx,
    discussion_id: String,
    model: String,
    content: &str,
) -> HandlerResult {
    let mut api = ctx.api.clone();
    let view = ctx.view();
    let known = Some(discussion_id.clone());
    let content = content.to_owned();
    let author_name = ctx.author_name.clone();
    ctx.start_run("a model answering you", async move {
        stream::render(view, known, async move {
            api.mention(&discussion_id, &model, &content, &author_name)
                .await
        })
        .await;
    })
    .await
}

/// Finds the model a mention means: its id, or the part after the provider,
/// ignoring case, or a unique prefix of either.
fn resolve_model(models: &[String], wanted: &str) -> Option<String> {
    let wanted = wanted.to_lowercase();
    let short = |m: &String| m.rsplit('/').next().unwrap_or(m).to_lowercase();
    let exact = models
        .iter()
        .find(|m| m.to_lowercase() == wanted)
        .or_else(|| models.iter().find(|m| short(m) == wanted));
    if let Some(model) = exact {
        return Some(model.clone());
    }
    let mut prefixed = models
        .iter()
        .filter(|m| m.to_lowercase().starts_with(&wanted) || short(m).starts_with(&wanted));
    let first = prefixed.next()?;
    prefixed.next().is_none().then(|| first.clone())
}

pub(super) async fn export(ctx: &mut Ctx, format: &str) -> HandlerResult {
    let Some(choice) = commands::parse_export(format) else {
        return ctx.reply("Usage: /export [md|json]").await;
    };
    let Some(discussion_id) = ctx.discussion_id().await? else {
        return Ok(());
    };
    let format = match choice {
        ExportChoice::Markdown => ExportFormat::Markdown,
        ExportChoice::Json => ExportFormat::Json,
    };
    let export = match ctx.api.export_discussion(&discussion_id, format).await {
        Ok(export) => export,
        Err(status) => return ctx.fail(&status).await,
    };
    let file_name = if export.file_name.is_empty() {
        match choice {
            ExportChoice::Markdown => "discussion.md".to_owned(),
            ExportChoice::Json => "discussion.json".to_owned(),
        }
    } else {
        export.file_name
    };
    let bytes = export.content.into_bytes();
    let mut attempts = 0;
    loop {
        let document = InputFile::memory(bytes.clone()).file_name(file_name.clone());
        match ctx
            .bot
            .send_document(ctx.chat, document)
            .caption("📄 The discussion so far")
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) => match retry_after(&e) {
                Some(wait) if attempts < 5 => {
                    attempts += 1;
                    tokio::time::sleep(wait).await;
                }
                _ => return Err(e.into()),
            },
        }
    }
}

pub(super) async fn status(ctx: &mut Ctx) -> HandlerResult {
    let mut html = String::new();
    match &ctx.state.project {
        Some(project) => html.push_str(&format!("📁 Project: <b>{}</b>\n", escape(&project.name))),
        None => html.push_str("📁 No project selected (/use &lt;name&gt;)\n"),
    }
    match ctx.state.discussion_id.clone() {
        Some(id) => match ctx.api.get_discussion(&id).await {
            Ok(discussion) => {
                let question: String = discussion.question.chars().take(200).collect();
                let state = match DiscussionStatus::try_from(discussion.status) {
                    Ok(DiscussionStatus::Running) => "running",
                    Ok(DiscussionStatus::Stopped) => "stopped",
                    Ok(DiscussionStatus::Interrupted) => "interrupted (/next continues it)",
                    _ => "idle",
                };
                html.push_str(&format!(
                    "💬 Discussion: <i>{}</i>\n{} round(s), {state}\n",
                    escape(&question),
                    discussion.rounds.len()
                ));
                if let Some(usage) = discussion
                    .usage
                    .filter(|u| u.prompt_tokens + u.completion_tokens > 0)
                {
                    let tokens = usage.prompt_tokens + usage.completion_tokens;
                    let cost = if usage.cost_usd > 0.0 {
                        format!(" · ${:.4}", usage.cost_usd)
                    } else {
                        String::new()
                    };
                    html.push_str(&format!("🧮 {tokens} tokens{cost}\n"));
                }
            }
            Err(status) => html.push_str(&format!(
                "💬 Discussion: unavailable ({})\n",
                escape(&crate::error::friendly(&status))
            )),
        },
        None => html.push_str("💬 No current discussion\n"),
    }
    match ctx.app.runs.current(ctx.chat) {
        Some((what, 0)) => html.push_str(&format!("⏳ Run going: {}", escape(&what))),
        Some((what, queued)) => html.push_str(&format!(
            "⏳ Run going: {} ({queued} more waiting)",
            escape(&what)
        )),
        None => html.push_str("No run going in this chat."),
    }
    ctx.reply(&html).await
}

async fn current_project_id(ctx: &mut Ctx) -> Result<Option<String>, crate::error::BotError> {
    if let Some(id) = ctx.state.project_id() {
        return Ok(Some(id.to_owned()));
    }
    ctx.project().await.map(|p| p.map(|p| p.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_resolve_to_the_projects_models() {
        let models = vec![
            "openai/gpt-4o".to_owned(),
            "anthropic/claude-sonnet-4".to_owned(),
            "openai/gpt-4o-mini".to_owned(),
        ];
        assert_eq!(
            resolve_model(&models, "openai/gpt-4o").as_deref(),
            Some("openai/gpt-4o")
        );
        assert_eq!(
            resolve_model(&models, "GPT-4o").as_deref(),
            Some("openai/gpt-4o")
        );
        assert_eq!(
            resolve_model(&models, "claude").as_deref(),
            Some("anthropic/claude-sonnet-4")
        );
        assert_eq!(resolve_model(&models, "gpt"), None, "ambiguous");
        assert_eq!(resolve_model(&models, "llama"), None);
    }
}
