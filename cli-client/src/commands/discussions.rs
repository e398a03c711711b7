//! `moai discussions`: the discussions of a project (or all), newest first.

use std::collections::HashMap;

use moai_proto::v1::{Discussion, DiscussionStatus, ListDiscussionsRequest};

use crate::args::DiscussionsArgs;
use crate::errors::{CliError, ExitCode};
use crate::output::Mode;
use crate::render::format::timestamp;
use crate::render::table::Table;
use crate::resolve;
use crate::session::Session;

/// Lists them.
///
/// # Errors
/// The server's error.
pub async fn run(session: &mut Session, args: DiscussionsArgs) -> Result<ExitCode, CliError> {
    let client = session.client().await?;
    let project_id = if args.all {
        String::new()
    } else if session.global.project.is_some() || session.remembered().project.is_some() {
        resolve::current_project(session).await?.id
    } else {
        String::new()
    };
    let mut discussions: Vec<Discussion> = Vec::new();
    let mut page_token = String::new();
    while discussions.len() < args.limit {
        let page_size = i32::try_from((args.limit - discussions.len()).min(200)).unwrap_or(200);
        let page = client
            .discussions
            .clone()
            .list_discussions(ListDiscussionsRequest {
                project_id: project_id.clone(),
                page_size,
                page_token,
            })
            .await
            .map_err(client.error("ListDiscussions"))?
            .into_inner();
        discussions.extend(page.discussions);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    discussions.truncate(args.limit);
    if session.out.mode == Mode::Json {
        for d in &discussions {
            session.out.json(d)?;
        }
        return Ok(ExitCode::Success);
    }
    if discussions.is_empty() {
        session
            .out
            .note("No discussions yet. Start one: moai open <question> or moai discuss <topic>");
        return Ok(ExitCode::Success);
    }
    let remembered = session.remembered();
    let current: Vec<&str> = remembered
        .discussions
        .values()
        .map(String::as_str)
        .collect();
    // Across projects, say which project each discussion belongs to.
    let names: Option<HashMap<String, String>> = if project_id.is_empty() {
        let projects = resolve::all_projects(&client).await?;
        Some(projects.into_iter().map(|p| (p.id, p.name)).collect())
    } else {
        None
    };
    let mut header = vec!["", "ID", "STATUS", "CREATED"];
    if names.is_some() {
        header.push("PROJECT");
    }
    header.push("QUESTION");
    let mut table = Table::new(&header);
    for d in &discussions {
        let mark = if current.contains(&d.id.as_str()) {
            "*"
        } else {
            ""
        };
        let question = d.question.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut row = vec![
            mark.into(),
            d.id.clone(),
            status_name(d.status),
            timestamp(d.create_time.as_ref()),
        ];
        if let Some(names) = &names {
            row.push(
                names
                    .get(&d.project_id)
                    .cloned()
                    .unwrap_or_else(|| "-".into()),
            );
        }
        row.push(question);
        table.row(row);
    }
    session
        .out
        .lines(&table.render(session.out.theme, session.out.width()))?;
    Ok(ExitCode::Success)
}

/// `running`, `idle`, `stopped`, `interrupted`.
pub fn status_name(status: i32) -> String {
    match DiscussionStatus::try_from(status) {
        Ok(DiscussionStatus::Running) => "running",
        Ok(DiscussionStatus::Idle) => "idle",
        Ok(DiscussionStatus::Stopped) => "stopped",
        Ok(DiscussionStatus::Interrupted) => "interrupted",
        _ => "-",
    }
    .to_string()
}
