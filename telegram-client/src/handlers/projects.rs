//! Project commands: list, create, select, show, rename, delete, and the
//! project's model list.

use std::collections::BTreeMap;

use moai_proto::v1::{Project, UpdateProjectRequest};
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};

use super::{Ctx, HandlerResult};
use crate::{commands, render::html::escape, telegram};

/// Most projects offered as buttons under `/projects`.
const MAX_BUTTONS: usize = 24;

fn model_list(models: &[String]) -> String {
    if models.is_empty() {
        "no models yet (/addmodel &lt;id&gt; adds one; /available lists them)".to_owned()
    } else {
        models
            .iter()
            .map(|m| format!("<code>{}</code>", escape(m)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Finds a project by name (exact, then ignoring case, then a unique
/// prefix) or by id.
fn find<'a>(projects: &'a [Project], wanted: &str) -> Option<&'a Project> {
    let lower = wanted.to_lowercase();
    projects
        .iter()
        .find(|p| p.name == wanted || p.id == wanted)
        .or_else(|| projects.iter().find(|p| p.name.to_lowercase() == lower))
        .or_else(|| {
            let mut matches = projects
                .iter()
                .filter(|p| p.name.to_lowercase().starts_with(&lower));
            let first = matches.next()?;
            matches.next().is_none().then_some(first)
        })
}

fn use_buttons(projects: &[Project], current: Option<&str>) -> Option<InlineKeyboardMarkup> {
    let buttons: Vec<Vec<InlineKeyboardButton>> = projects
        .iter()
        .filter(|p| Some(p.id.as_str()) != current)
        .take(MAX_BUTTONS)
        .map(|p| {
            vec![InlineKeyboardButton::callback(
                format!("Use {}", p.name),
                format!("use:{}", p.id),
            )]
        })
        .collect();
    (!buttons.is_empty()).then(|| InlineKeyboardMarkup::new(buttons))
}

pub(super) async fn list(ctx: &mut Ctx) -> HandlerResult {
    let projects = match ctx.api.list_projects().await {
        Ok(projects) => projects,
        Err(status) => return ctx.fail(&status).await,
    };
    if projects.is_empty() {
        return ctx
            .reply("You have no projects yet. Create one: /new &lt;name&gt; [model ...]")
            .await;
    }
    let current = ctx.state.project_id().map(ToOwned::to_owned);
    let mut html = String::from("<b>Your projects</b>\n");
    for project in &projects {
        let marker = if Some(&project.id) == current.as_ref() {
            "▶️"
        } else {
            "•"
        };
        let count = project.models.len();
        let plural = if count == 1 { "" } else { "s" };
        html.push_str(&format!(
            "{marker} <b>{}</b> · {count} model{plural}\n",
            escape(&project.name)
        ));
    }
    if current.is_none() {
        html.push_str("\nNo project selected: /use &lt;name&gt; picks one.");
    }
    match use_buttons(&projects, current.as_deref()) {
        Some(buttons) if html.len() < 3500 => {
            telegram::send_with_markup(&ctx.bot, ctx.chat, &html, buttons).await?;
            Ok(())
        }
        _ => ctx.reply(&html).await,
    }
}

pub(super) async fn create(ctx: &mut Ctx, args: &str) -> HandlerResult {
    let Some((name, models)) = commands::parse_new(args) else {
        return ctx
            .reply("Usage: /new &lt;name&gt; [model ...], e.g. <code>/new Ideas openai/gpt-4o anthropic/claude-sonnet-4</code>")
            .await;
    };
    let project = match ctx.api.create_project(&name, models).await {
        Ok(project) => project,
        Err(status) => return ctx.fail(&status).await,
    };
    ctx.save(|s| s.select_project(&project.id, &project.name))
        .await?;
    let next = if project.models.is_empty() {
        ""
    } else {
        "\nAsk them something: /open &lt;question&gt;"
    };
    ctx.reply(&format!(
        "✅ Created and selected <b>{}</b>.\nModels: {}{next}",
        escape(&project.name),
        model_list(&project.models)
    ))
    .await
}

pub(super) async fn select(ctx: &mut Ctx, name: &str) -> HandlerResult {
    let projects = match ctx.api.list_projects().await {
        Ok(projects) => projects,
        Err(status) => return ctx.fail(&status).await,
    };
    if name.is_empty() {
        return match use_buttons(&projects, None) {
            Some(buttons) => {
                telegram::send_with_markup(&ctx.bot, ctx.chat, "Which project?", buttons).await?;
                Ok(())
            }
            None => {
                ctx.reply("You have no projects yet. Create one: /new &lt;name&gt; [model ...]")
                    .await
            }
        };
    }
    let Some(project) = find(&projects, name) else {
        return ctx
            .reply(&format!(
                "No project named <b>{}</b>. /projects lists yours.",
                escape(name)
            ))
            .await;
    };
    let project = project.clone();
    select_project(ctx, &project).await
}

/// Makes `project` the chat's current one and says so.
pub(super) async fn select_project(ctx: &mut Ctx, project: &Project) -> HandlerResult {
    ctx.save(|s| s.select_project(&project.id, &project.name))
        .await?;
    ctx.reply(&format!(
        "Now using <b>{}</b>.\nModels: {}",
        escape(&project.name),
        model_list(&project.models)
    ))
    .await
}

pub(super) async fn show(ctx: &mut Ctx) -> HandlerResult {
    let Some(project) = ctx.project().await? else {
        return Ok(());
    };
    let mut html = format!(
        "📁 <b>{}</b>\nModels: {}",
        escape(&project.name),
        model_list(&project.models)
    );
    let fallbacks = super::fallback::lines(&project);
    if !fallbacks.is_empty() {
        html.push_str(&format!("\nFallbacks:\n{}", fallbacks.join("\n")));
    }
    if !project.summarizer_model.is_empty() {
        html.push_str(&format!(
            "\nSummaries by <code>{}</code>",
            escape(&project.summarizer_model)
        ));
    }
    if !project.system_prompt.is_empty() {
        html.push_str(&format!(
            "\nInstructions: <i>{}</i>",
            escape(&project.system_prompt)
        ));
    }
    ctx.reply(&html).await
}

pub(super) async fn rename(ctx: &mut Ctx, name: &str) -> HandlerResult {
    if name.is_empty() {
        return ctx.reply("Usage: /rename &lt;new name&gt;").await;
    }
    let Some(project) = ctx.project().await? else {
        return Ok(());
    };
    let request = UpdateProjectRequest {
        project_id: project.id,
        name: Some(name.to_owned()),
        ..Default::default()
    };
    match ctx.api.update_project(request).await {
        Ok(project) => {
            ctx.save(|s| s.select_project(&project.id, &project.name))
                .await?;
            ctx.reply(&format!("✏️ Renamed to <b>{}</b>.", escape(&project.name)))
                .await
        }
        Err(status) => ctx.fail(&status).await,
    }
}

pub(super) async fn delete(ctx: &mut Ctx, name: &str) -> HandlerResult {
    if name.is_empty() {
        return ctx.reply("Usage: /delete &lt;name&gt;").await;
    }
    let projects = match ctx.api.list_projects().await {
        Ok(projects) => projects,
        Err(status) => return ctx.fail(&status).await,
    };
    let Some(project) = find(&projects, name) else {
        return ctx
            .reply(&format!(
                "No project named <b>{}</b>. /projects lists yours.",
                escape(name)
            ))
            .await;
    };
    let buttons = InlineKeyboardMarkup::new([[
        InlineKeyboardButton::callback("🗑 Delete", format!("del:{}", project.id)),
        InlineKeyboardButton::callback("Cancel", "cancel"),
    ]]);
    let question = format!(
        "Delete <b>{}</b> and all of its discussions? This cannot be undone.",
        escape(&project.name)
    );
    telegram::send_with_markup(&ctx.bot, ctx.chat, &question, buttons).await?;
    Ok(())
}

pub(super) async fn models(ctx: &mut Ctx) -> HandlerResult {
    let Some(project) = ctx.project().await? else {
        return Ok(());
    };
    if project.models.is_empty() {
        return ctx
            .reply(&format!(
                "<b>{}</b> has {}",
                escape(&project.name),
                model_list(&[])
            ))
            .await;
    }
    let mut html = format!(
        "Models of <b>{}</b>, in speaking order:\n",
        escape(&project.name)
    );
    for (i, model) in project.models.iter().enumerate() {
        html.push_str(&format!("{}. <code>{}</code>\n", i + 1, escape(model)));
    }
    ctx.reply(&html).await
}

pub(super) async fn edit_models(ctx: &mut Ctx, ids: &str, add: bool) -> HandlerResult {
    let ids = commands::words(ids);
    if ids.is_empty() {
        let usage = if add {
            "/addmodel &lt;id&gt; ..."
        } else {
            "/removemodel &lt;id&gt; ..."
        };
        return ctx.reply(&format!("Usage: {usage}")).await;
    }
    let Some(project) = ctx.project().await? else {
        return Ok(());
    };
    let mut request = UpdateProjectRequest {
        project_id: project.id,
        ..Default::default()
    };
    if add {
        request.add_models = ids;
    } else {
        request.remove_models = ids;
    }
    match ctx.api.update_project(request).await {
        Ok(project) => {
            ctx.reply(&format!("Models now: {}", model_list(&project.models)))
                .await
        }
        Err(status) => ctx.fail(&status).await,
    }
}

pub(super) async fn usage(ctx: &mut Ctx) -> HandlerResult {
    let usage = match ctx.api.usage().await {
        Ok(Some(usage)) => usage,
        Ok(None) => return ctx.reply("No usage to show.").await,
        Err(status) => return ctx.fail(&status).await,
    };
    ctx.reply(&crate::render::usage_html(&usage)).await
}

pub(super) async fn available(ctx: &mut Ctx) -> HandlerResult {
    let models = match ctx.api.list_models().await {
        Ok(models) => models,
        Err(status) => return ctx.fail(&status).await,
    };
    if models.is_empty() {
        return ctx
            .reply("The server's providers offer no models right now.")
            .await;
    }
    let mut by_provider: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for model in &models {
        let mut line = format!("<code>{}</code>", escape(&model.id));
        if !model.name.is_empty() && model.name != model.id {
            line.push_str(&format!(" · {}", escape(&model.name)));
        }
        if model.context_length > 0 {
            line.push_str(&format!(" · {}k", model.context_length / 1000));
        }
        by_provider
            .entry(model.provider.as_str())
            .or_default()
            .push(line);
    }
    let mut html = format!("<b>{} models available</b>\n", models.len());
    for (provider, lines) in by_provider {
        let provider = if provider.is_empty() {
            "models"
        } else {
            provider
        };
        html.push_str(&format!(
            "\n<b>{}</b>\n{}\n",
            escape(provider),
            lines.join("\n")
        ));
    }
    ctx.reply(&html).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(id: &str, name: &str) -> Project {
        Project {
            id: id.into(),
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn finds_projects_by_name_case_prefix_or_id() {
        let projects = vec![
            project("1", "Alpha"),
            project("2", "alpine"),
            project("3", "Beta"),
        ];
        assert_eq!(find(&projects, "Alpha").map(|p| &p.id[..]), Some("1"));
        assert_eq!(find(&projects, "ALPINE").map(|p| &p.id[..]), Some("2"));
        assert_eq!(find(&projects, "be").map(|p| &p.id[..]), Some("3"));
        assert_eq!(
            find(&projects, "alp").map(|p| &p.id[..]),
            None,
            "ambiguous prefix"
        );
        assert_eq!(find(&projects, "3").map(|p| &p.id[..]), Some("3"));
    }
}
