//! Turning what the user typed into ids: projects by name or id, discussions
//! by id or unique prefix, models by a unique part of their id.

use moai_proto::v1::{
    GetDiscussionRequest, GetProjectRequest, ListDiscussionsRequest, ListProjectsRequest, Project,
};

use crate::client::Client;
use crate::errors::CliError;
use crate::session::Session;

/// Pages fetched at most when listing everything.
const MAX_PAGES: usize = 50;

/// Every project of the caller.
///
/// # Errors
/// The server's error.
#[tracing::instrument(skip_all)]
pub async fn all_projects(client: &Client) -> Result<Vec<Project>, CliError> {
    let mut projects = Vec::new();
    let mut page_token = String::new();
    for _ in 0..MAX_PAGES {
        let page = client
            .projects
            .clone()
            .list_projects(ListProjectsRequest {
                page_size: 200,
                page_token,
            })
            .await
            .map_err(client.error("ListProjects"))?
            .into_inner();
        projects.extend(page.projects);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    Ok(projects)
}

/// Picks the project `reference` names: an id, else an exact name, else a
/// name that differs only in case.
pub fn pick_project<'a>(projects: &'a [Project], reference: &str) -> Option<&'a Project> {
    let reference = reference.trim();
    projects
        .iter()
        .find(|p| p.id == reference)
        .or_else(|| projects.iter().find(|p| p.name == reference))
        .or_else(|| {
            let mut same = projects
                .iter()
                .filter(|p| p.name.eq_ignore_ascii_case(reference));
            match (same.next(), same.next()) {
                (Some(p), None) => Some(p),
                _ => None,
            }
        })
}

/// The project `reference` names.
///
/// # Errors
/// [`CliError::NotFound`] when none matches.
#[tracing::instrument(skip(client))]
pub async fn project(client: &Client, reference: &str) -> Result<Project, CliError> {
    let projects = all_projects(client).await?;
    pick_project(&projects, reference).cloned().ok_or_else(|| {
        CliError::NotFound(format!(
            "no project named or with id '{reference}'; see `moai project list`"
        ))
    })
}

/// The project to work on: `--project`, else the current one, else the only
/// one there is. A current project that no longer exists is forgotten with a
/// notice, and the choice starts over.
///
/// # Errors
/// [`CliError::Usage`] when there is none to choose; the server's error.
pub async fn current_project(session: &mut Session) -> Result<Project, CliError> {
    let client = session.client().await?;
    if let Some(reference) = session.global.project.clone() {
        return project(&client, &reference).await;
    }
    let remembered = session.remembered();
    if let Some(id) = remembered.project {
        let found = client
            .projects
            .clone()
            .get_project(GetProjectRequest {
                project_id: id.clone(),
            })
            .await;
        match found {
            Ok(response) => {
                return response
                    .into_inner()
                    .project
                    .ok_or_else(|| CliError::Internal("empty GetProject response".into()));
            }
            Err(status) if status.code() == tonic::Code::NotFound => {
                session.out.note(&format!(
                    "The current project ({}) no longer exists; forgot it.",
                    remembered.project_name.unwrap_or_else(|| id.clone())
                ));
                session.remember_or_warn(|s| s.forget_project(&id));
            }
            Err(status) => return Err(client.error("GetProject")(status)),
        }
    }
    let projects = all_projects(&client).await?;
    match projects.as_slice() {
        [only] => {
            let only = only.clone();
            session.remember_or_warn(|s| {
                s.project = Some(only.id.clone());
                s.project_name = Some(only.name.clone());
            });
            Ok(only)
        }
        [] => Err(CliError::Usage(
            "no project yet: create one with `moai project create <name> --model <id>...`".into(),
        )),
        _ => Err(CliError::Usage(
            "no current project: choose one with `moai use <project>` or pass --project (see `moai project list`)".into(),
        )),
    }
}

/// The id of the project whose current discussion a command means: the
/// project `--project` names, else the current one (no server call when it is
/// remembered; a stale one shows up as a missing discussion).
async fn project_of_current_discussion(session: &mut Session) -> Result<String, CliError> {
    if session.global.project.is_none()
        && let Some(id) = session.remembered().project
    {
        return Ok(id);
    }
    match current_project(session).await {
        Ok(project) => Ok(project.id),
        Err(CliError::Usage(why)) => {
            Err(CliError::Usage(format!("no current discussion, and {why}")))
        }
        Err(e) => Err(e),
    }
}

/// The current discussion of the project a command means; one that no longer
/// exists is forgotten with a notice.
async fn current_discussion(session: &mut Session) -> Result<String, CliError> {
    let project_id = project_of_current_discussion(session).await?;
    let none = || {
        CliError::Usage(
            "no current discussion: start one with `moai open <question>` or `moai discuss <topic>`, or pass its id (see `moai discussions`)".into(),
        )
    };
    let Some(id) = session
        .remembered()
        .discussion_of(&project_id)
        .map(str::to_string)
    else {
        return Err(none());
    };
    let client = session.client().await?;
    let found = client
        .discussions
        .clone()
        .get_discussion(GetDiscussionRequest {
            discussion_id: id.clone(),
        })
        .await;
    match found {
        Err(status) if status.code() == tonic::Code::NotFound => {
            session.out.note(&format!(
                "The current discussion ({id}) no longer exists; forgot it."
            ));
            session.remember_or_warn(|s| s.forget_discussion(&id));
            Err(none())
        }
        // Anything else is for the command's own call to report.
        _ => Ok(id),
    }
}

/// The discussion to work on: `explicit` (an id or a unique prefix of one),
/// else the current one of the project (`--project` or the current project).
///
/// # Errors
/// [`CliError::Usage`] when there is none or the prefix is ambiguous;
/// [`CliError::NotFound`] for an unknown prefix.
#[tracing::instrument(skip(session))]
pub async fn discussion_id(
    session: &mut Session,
    explicit: Option<&str>,
) -> Result<String, CliError> {
    let Some(reference) = explicit.map(str::trim).filter(|r| !r.is_empty()) else {
        return current_discussion(session).await;
    };
    // Full ids go to the server as they are; short ones are prefixes to look up.
    if reference.len() >= 20 {
        return Ok(reference.to_string());
    }
    let client = session.client().await?;
    let mut matches = Vec::new();
    let mut page_token = String::new();
    for _ in 0..MAX_PAGES {
        let page = client
            .discussions
            .clone()
            .list_discussions(ListDiscussionsRequest {
                project_id: String::new(),
                page_size: 200,
                page_token,
            })
            .await
            .map_err(client.error("ListDiscussions"))?
            .into_inner();
        matches.extend(
            page.discussions
                .into_iter()
                .map(|d| d.id)
                .filter(|id| id.starts_with(reference)),
        );
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    if let Some(exact) = matches.iter().find(|id| *id == reference) {
        return Ok(exact.clone());
    }
    match matches.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(CliError::NotFound(format!(
            "no discussion with id '{reference}'; see `moai discussions --all`"
        ))),
        many => Err(CliError::Usage(format!(
            "'{reference}' matches {} discussions ({}{}); give more of the id",
            many.len(),
            many.iter().take(3).cloned().collect::<Vec<_>>().join(", "),
            if many.len() > 3 { ", …" } else { "" }
        ))),
    }
}

/// Picks the model `wanted` means among `models`: exact, else the part after
/// the provider (`gpt-4o` for `openai/gpt-4o`), else a unique substring.
///
/// # Errors
/// The candidates when several match; `Ok(None)` when none does.
pub fn pick_model(models: &[String], wanted: &str) -> Result<Option<String>, String> {
    let wanted = wanted.trim().trim_start_matches('@');
    let lower = wanted.to_lowercase();
    if let Some(m) = models.iter().find(|m| m.as_str() == wanted) {
        return Ok(Some(m.clone()));
    }
    let by_name: Vec<&String> = models
        .iter()
        .filter(|m| {
            m.rsplit('/')
                .next()
                .is_some_and(|n| n.eq_ignore_ascii_case(wanted))
        })
        .collect();
    if let [one] = by_name.as_slice() {
        return Ok(Some((*one).clone()));
    }
    let containing: Vec<&String> = models
        .iter()
        .filter(|m| m.to_lowercase().contains(&lower))
        .collect();
    match containing.as_slice() {
        [one] => Ok(Some((*one).clone())),
        [] => Ok(None),
        many => Err(many
            .iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join(", ")),
    }
}

/// The model of discussion `discussion_id`'s project that `wanted` means; as
/// typed when the project's list cannot be read (the server then says what is
/// wrong).
///
/// # Errors
/// [`CliError::Usage`] when `wanted` is ambiguous; [`CliError::NotFound`],
/// listing the project's models, when none matches.
#[tracing::instrument(skip(client))]
pub async fn model(client: &Client, discussion_id: &str, wanted: &str) -> Result<String, CliError> {
    let plain = wanted.trim().trim_start_matches('@').to_string();
    let Ok(discussion) = client
        .discussions
        .clone()
        .get_discussion(GetDiscussionRequest {
            discussion_id: discussion_id.into(),
        })
        .await
    else {
        return Ok(plain);
    };
    let Some(project_id) = discussion.into_inner().discussion.map(|d| d.project_id) else {
        return Ok(plain);
    };
    let Ok(project) = client
        .projects
        .clone()
        .get_project(GetProjectRequest { project_id })
        .await
    else {
        return Ok(plain);
    };
    let Some(project) = project.into_inner().project else {
        return Ok(plain);
    };
    match pick_model(&project.models, &plain) {
        Ok(Some(model)) => Ok(model),
        Ok(None) if project.models.is_empty() => Ok(plain),
        Ok(None) => Err(CliError::NotFound(format!(
            "no model '{plain}' in project {}; its models: {}",
            project.name,
            project.models.join(", ")
        ))),
        Err(candidates) => Err(CliError::Usage(format!(
            "'{plain}' could be any of {candidates}; say which"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn projects() -> Vec<Project> {
        [("p1", "Alpha"), ("p2", "beta"), ("p3", "BETA")]
            .iter()
            .map(|(id, name)| Project {
                id: id.to_string(),
                name: name.to_string(),
                ..Default::default()
            })
            .collect()
    }

    #[test]
    fn projects_by_id_name_or_unique_case_insensitive_name() {
        let ps = projects();
        assert_eq!(
            pick_project(&ps, "p2").map(|p| p.name.as_str()),
            Some("beta")
        );
        assert_eq!(pick_project(&ps, "BETA").map(|p| p.id.as_str()), Some("p3"));
        assert_eq!(
            pick_project(&ps, "alpha").map(|p| p.id.as_str()),
            Some("p1")
        );
        assert!(
            pick_project(&ps, "Beta").is_none(),
            "two differ only in case"
        );
        assert!(pick_project(&ps, "gamma").is_none());
    }

    #[test]
    fn models_by_full_id_name_or_unique_part() {
        let models = vec![
            "openai/gpt-4o".to_string(),
            "openai/gpt-4o-mini".into(),
            "anthropic/claude-sonnet-4".into(),
        ];
        assert_eq!(
            pick_model(&models, "@openai/gpt-4o"),
            Ok(Some("openai/gpt-4o".into()))
        );
        assert_eq!(
            pick_model(&models, "gpt-4o"),
            Ok(Some("openai/gpt-4o".into()))
        );
        assert_eq!(
            pick_model(&models, "claude"),
            Ok(Some("anthropic/claude-sonnet-4".into()))
        );
        assert_eq!(pick_model(&models, "llama"), Ok(None));
        assert!(pick_model(&models, "gpt").is_err());
    }
}
