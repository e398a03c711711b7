//! `moai use <PROJECT>` and `moai status`: the current project and discussion.

use std::time::Duration;

use crate::args::{StatusArgs, UseArgs};
use crate::config;
use crate::errors::{CliError, ExitCode};
use crate::output::Mode;
use crate::resolve;
use crate::session::Session;

/// Makes a project the current one (its own current discussion comes with it).
///
/// # Errors
/// An unknown project, the server's error, a state file that cannot be written.
pub async fn use_project(session: &mut Session, args: UseArgs) -> Result<ExitCode, CliError> {
    let client = session.client().await?;
    let project = resolve::project(&client, &args.project).await?;
    session.remember(|s| {
        s.project = Some(project.id.clone());
        s.project_name = Some(project.name.clone());
    })?;
    if session.out.mode == Mode::Json {
        session.out.json(&project)?;
    } else {
        session.out.done(&format!(
            "Now using project {} ({}) with {}",
            project.name,
            project.id,
            if project.models.is_empty() {
                "no models yet".to_string()
            } else {
                project.models.join(", ")
            }
        ))?;
    }
    Ok(ExitCode::Success)
}

/// Shows where the CLI points and whether the server answers.
///
/// # Errors
/// The connection's error, after everything known has been printed.
pub async fn status(session: &mut Session, args: StatusArgs) -> Result<ExitCode, CliError> {
    let deadline = args
        .wait
        .map(|secs| tokio::time::Instant::now() + Duration::from_secs(secs));
    let connection = loop {
        // The server first (is it running?), then the key: as every command.
        let connection = match session.client().await {
            Ok(client) => resolve::all_projects(&client).await.map(|p| p.len()),
            Err(e) => Err(e),
        };
        // A server just started may not listen yet, nor have written its key.
        let starting = matches!(
            connection,
            Err(CliError::Unreachable { .. } | CliError::NoKey { .. })
        );
        match deadline {
            Some(deadline) if starting && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            _ => break connection,
        }
    };
    let remembered = session.remembered();
    let key = config::resolve_key(session.global.api_key.as_deref());
    let key_source = key
        .as_ref()
        .map_or_else(|_| "none".to_string(), |k| k.source.clone());
    if session.out.mode == Mode::Json {
        let value = serde_json::json!({
            "server": session.server,
            "keySource": key_source,
            "connected": connection.is_ok(),
            "error": connection.as_ref().err().map(ToString::to_string),
            "projects": connection.as_ref().ok(),
            "project": remembered.project,
            "projectName": remembered.project_name,
            "discussion": remembered.current_discussion(),
            "configDir": config::config_dir(),
        });
        session.out.lines(&[value.to_string()])?;
    } else {
        let theme = session.out.theme;
        let label = |name: &str| theme.paint(&theme.dim(), &format!("{name:<12}"));
        let reach = match &connection {
            Ok(1) => theme.paint(&theme.ok(), "connected (1 project)"),
            Ok(n) => theme.paint(&theme.ok(), &format!("connected ({n} projects)")),
            Err(e) => theme.paint(&theme.error(), &e.to_string()),
        };
        let project = match (&remembered.project_name, &remembered.project) {
            (Some(name), Some(id)) => format!("{name} ({id})"),
            (None, Some(id)) => id.clone(),
            _ => "(none: moai use <project>)".into(),
        };
        session.out.lines(&[
            format!("{}{}", label("Server"), session.server),
            format!("{}{reach}", label("Status")),
            format!("{}{key_source}", label("API key"),),
            format!("{}{project}", label("Project")),
            format!(
                "{}{}",
                label("Discussion"),
                remembered.current_discussion().unwrap_or("(none)")
            ),
            format!("{}{}", label("Config"), config::config_dir().display()),
        ])?;
    }
    connection.map(|_| ExitCode::Success)
}
