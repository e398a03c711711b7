//! `moai project ...`: create, list, show, rename, delete, and edit models.

use std::io::{BufRead, IsTerminal, Write};

use moai_proto::v1::{
    CreateProjectRequest, DeleteProjectRequest, FallbackMap, ModelList, Project,
    UpdateProjectRequest,
};

use crate::args::{ProjectCommand, ProjectCreateArgs, ProjectEditArgs, ProjectModelsCommand};
use crate::errors::{CliError, ExitCode};
use crate::fallbacks;
use crate::output::Mode;
use crate::render::format::timestamp;
use crate::render::table::Table;
use crate::resolve;
use crate::session::Session;

/// Runs a `moai project` subcommand.
///
/// # Errors
/// The server's or the resolver's error.
pub async fn run(session: &mut Session, command: ProjectCommand) -> Result<ExitCode, CliError> {
    match command {
        ProjectCommand::Create(args) => create(session, args).await,
        ProjectCommand::List => list(session).await,
        ProjectCommand::Show(args) => {
            let project = match args.project.or_else(|| session.global.project.clone()) {
                Some(reference) => resolve::project(&session.client().await?, &reference).await?,
                None => resolve::current_project(session).await?,
            };
            show(session, &project)
        }
        ProjectCommand::Rename { project, new_name } => rename(session, &project, new_name).await,
        ProjectCommand::Delete { project, yes } => delete(session, &project, yes).await,
        ProjectCommand::Edit(args) => edit(session, args).await,
        ProjectCommand::Models(ProjectModelsCommand::Add(args)) => {
            edit_models(
                session,
                UpdateProjectRequest {
                    add_models: args.models,
                    ..Default::default()
                },
            )
            .await
        }
        ProjectCommand::Models(ProjectModelsCommand::Remove(args)) => {
            edit_models(
                session,
                UpdateProjectRequest {
                    remove_models: args.models,
                    ..Default::default()
                },
            )
            .await
        }
    }
}

async fn create(session: &mut Session, args: ProjectCreateArgs) -> Result<ExitCode, CliError> {
    let client = session.client().await?;
    let request = CreateProjectRequest {
        name: args.name.trim().to_string(),
        models: args
            .models
            .iter()
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty())
            .collect(),
        system_prompt: args.system_prompt.unwrap_or_default(),
        summarizer_model: args.summarizer.unwrap_or_default(),
        fallbacks: fallbacks::parse(&args.fallbacks)?,
    };
    let response = client
        .projects
        .clone()
        .create_project(request)
        .await
        .map_err(client.error("CreateProject"))?
        .into_inner();
    for warning in &response.warnings {
        session.out.note(warning);
    }
    let project = response
        .project
        .ok_or_else(|| CliError::Internal("the server returned no project".into()))?;
    let became_current = session.remembered().project.is_none();
    if became_current {
        session.remember_or_warn(|s| {
            s.project = Some(project.id.clone());
            s.project_name = Some(project.name.clone());
        });
    }
    if session.out.mode == Mode::Json {
        session.out.json(&project)?;
    } else {
        let current = if became_current {
            "; it is now the current project"
        } else {
            ""
        };
        session.out.done(&format!(
            "Created project {} ({}) with {}{current}",
            project.name,
            project.id,
            project.models.join(", ")
        ))?;
        if !became_current {
            session
                .out
                .note(&format!("Use it with: moai use {}", project.name));
        }
    }
    Ok(ExitCode::Success)
}

async fn list(session: &mut Session) -> Result<ExitCode, CliError> {
    let client = session.client().await?;
    let projects = resolve::all_projects(&client).await?;
    if session.out.mode == Mode::Json {
        for project in &projects {
            session.out.json(project)?;
        }
        return Ok(ExitCode::Success);
    }
    if projects.is_empty() {
        session
            .out
            .note("No projects yet. Create one: moai project create <name> --model <id>...");
        return Ok(ExitCode::Success);
    }
    let current = session.remembered().project.unwrap_or_default();
    let mut table = Table::new(&["", "NAME", "ID", "MODELS"]);
    for p in &projects {
        let mark = if p.id == current { "*" } else { "" };
        table.row(vec![
            mark.into(),
            p.name.clone(),
            p.id.clone(),
            p.models.join(", "),
        ]);
    }
    session
        .out
        .lines(&table.render(session.out.theme, session.out.width()))?;
    Ok(ExitCode::Success)
}

fn show(session: &Session, project: &Project) -> Result<ExitCode, CliError> {
    if session.out.mode == Mode::Json {
        session.out.json(project)?;
        return Ok(ExitCode::Success);
    }
    let theme = session.out.theme;
    let label = |name: &str| theme.paint(&theme.dim(), &format!("{name:<15}"));
    let mut lines = vec![
        format!(
            "{}{}",
            label("Project"),
            theme.paint(&theme.bold(), &project.name)
        ),
        format!("{}{}", label("ID"), project.id),
        format!(
            "{}{}",
            label("Models"),
            if project.models.is_empty() {
                "(none)".to_string()
            } else {
                String::new()
            }
        ),
    ];
    for (i, model) in project.models.iter().enumerate() {
        lines.push(format!(
            "  {}. {}{}",
            i + 1,
            theme.paint(&theme.model(), model),
            theme.paint(&theme.dim(), &fallbacks::suffix(project, model))
        ));
    }
    let summarizer = if project.summarizer_model.is_empty() {
        "(the first model)"
    } else {
        &project.summarizer_model
    };
    lines.push(format!("{}{summarizer}", label("Summarizer")));
    let prompt = if project.system_prompt.is_empty() {
        "(none)"
    } else {
        &project.system_prompt
    };
    lines.push(format!("{}{}", label("System prompt"), prompt));
    lines.push(format!(
        "{}{}",
        label("Created"),
        timestamp(project.create_time.as_ref())
    ));
    lines.push(format!(
        "{}{}",
        label("Updated"),
        timestamp(project.update_time.as_ref())
    ));
    session.out.lines(&lines)?;
    Ok(ExitCode::Success)
}

async fn update(session: &mut Session, request: UpdateProjectRequest) -> Result<Project, CliError> {
    let client = session.client().await?;
    let response = client
        .projects
        .clone()
        .update_project(request)
        .await
        .map_err(client.error("UpdateProject"))?
        .into_inner();
    for warning in &response.warnings {
        session.out.note(warning);
    }
    response
        .project
        .ok_or_else(|| CliError::Internal("the server returned no project".into()))
}

async fn rename(
    session: &mut Session,
    reference: &str,
    new_name: String,
) -> Result<ExitCode, CliError> {
    let project = resolve::project(&session.client().await?, reference).await?;
    let request = UpdateProjectRequest {
        project_id: project.id.clone(),
        name: Some(new_name.trim().to_string()),
        ..Default::default()
    };
    let updated = update(session, request).await?;
    if session.remembered().project.as_deref() == Some(updated.id.as_str()) {
        session.remember_or_warn(|s| s.project_name = Some(updated.name.clone()));
    }
    if session.out.mode == Mode::Json {
        session.out.json(&updated)?;
    } else {
        session.out.done(&format!(
            "Renamed project {} to {}",
            project.name, updated.name
        ))?;
    }
    Ok(ExitCode::Success)
}

async fn delete(session: &mut Session, reference: &str, yes: bool) -> Result<ExitCode, CliError> {
    let client = session.client().await?;
    let project = resolve::project(&client, reference).await?;
    if !yes {
        confirm(&format!(
            "Delete project '{}' and all of its discussions? [y/N] ",
            project.name
        ))?;
    }
    client
        .projects
        .clone()
        .delete_project(DeleteProjectRequest {
            project_id: project.id.clone(),
        })
        .await
        .map_err(client.error("DeleteProject"))?;
    session.remember_or_warn(|s| s.forget_project(&project.id));
    session.out.done(&format!(
        "Deleted project {} ({})",
        project.name, project.id
    ))?;
    Ok(ExitCode::Success)
}

/// Asks on the terminal; refuses without one.
fn confirm(question: &str) -> Result<(), CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(
            "not deleting without confirmation; pass --yes".into(),
        ));
    }
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CliError::io("cannot read the answer", e))?;
    if matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(CliError::Usage("cancelled; nothing was deleted".into()))
    }
}

async fn edit_models(
    session: &mut Session,
    mut request: UpdateProjectRequest,
) -> Result<ExitCode, CliError> {
    let project = resolve::current_project(session).await?;
    request.project_id = project.id.clone();
    let updated = update(session, request).await?;
    if session.out.mode == Mode::Json {
        session.out.json(&updated)?;
    } else {
        let models = if updated.models.is_empty() {
            "(none)".to_string()
        } else {
            updated.models.join(", ")
        };
        session
            .out
            .done(&format!("Project {} now has: {models}", updated.name))?;
    }
    Ok(ExitCode::Success)
}

async fn edit(session: &mut Session, args: ProjectEditArgs) -> Result<ExitCode, CliError> {
    if args.system_prompt.is_none()
        && args.summarizer.is_none()
        && args.models.is_empty()
        && args.fallbacks.is_empty()
        && !args.no_fallbacks
    {
        return Err(CliError::Usage(
            "nothing to change: pass --system-prompt, --summarizer, --model, --fallback or --no-fallbacks".into(),
        ));
    }
    let fallbacks = (!args.fallbacks.is_empty() || args.no_fallbacks)
        .then(|| fallbacks::parse(&args.fallbacks))
        .transpose()?
        .map(|fallbacks| FallbackMap { fallbacks });
    let project = match args.project.or_else(|| session.global.project.clone()) {
        Some(reference) => resolve::project(&session.client().await?, &reference).await?,
        None => resolve::current_project(session).await?,
    };
    let models = (!args.models.is_empty()).then(|| ModelList {
        models: args.models.iter().map(|m| m.trim().to_string()).collect(),
    });
    let request = UpdateProjectRequest {
        project_id: project.id,
        system_prompt: args.system_prompt,
        summarizer_model: args.summarizer,
        models,
        fallbacks,
        ..Default::default()
    };
    let updated = update(session, request).await?;
    show(session, &updated)
}
