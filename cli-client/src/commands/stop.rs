//! `moai stop [<DISCUSSION>] [--close]`: cancel the running round; ending an
//! idle discussion for good takes `--close`.

use moai_proto::v1::{DiscussionStatus, GetDiscussionRequest, StopDiscussionRequest};

use crate::args::StopArgs;
use crate::errors::{CliError, ExitCode};
use crate::output::Mode;
use crate::resolve;
use crate::session::Session;

/// Stops the discussion's run (partial answers are kept as interrupted), or
/// says that nothing runs and changes nothing, unless `--close`.
///
/// The server's StopDiscussion ends a discussion for good whether or not a
/// run is going, so the idle case is checked here first.
///
/// # Errors
/// No discussion, the server's error.
pub async fn run(session: &mut Session, args: StopArgs) -> Result<ExitCode, CliError> {
    let discussion_id = resolve::discussion_id(session, args.discussion.as_deref()).await?;
    let client = session.client().await?;
    let current = client
        .discussions
        .clone()
        .get_discussion(GetDiscussionRequest {
            discussion_id: discussion_id.clone(),
        })
        .await
        .map_err(client.error("GetDiscussion"))?
        .into_inner()
        .discussion
        .ok_or_else(|| CliError::Internal("empty GetDiscussion response".into()))?;
    let status = DiscussionStatus::try_from(current.status).unwrap_or_default();
    if status == DiscussionStatus::Stopped {
        session.out.note(&format!(
            "Discussion {discussion_id} was already stopped; nothing changed."
        ));
        return Ok(ExitCode::Success);
    }
    let running = status == DiscussionStatus::Running;
    if !running && !args.close {
        if session.out.mode == Mode::Json {
            session.out.json(&current)?;
        }
        session.out.note(&format!(
            "Nothing is running in discussion {discussion_id}; nothing changed. \
             To end it for good (no more rounds): moai stop --close"
        ));
        return Ok(ExitCode::Success);
    }
    let discussion = client
        .discussions
        .clone()
        .stop_discussion(StopDiscussionRequest {
            discussion_id: discussion_id.clone(),
        })
        .await
        .map_err(client.error("StopDiscussion"))?
        .into_inner()
        .discussion;
    let text = if running {
        format!(
            "Stopped discussion {discussion_id}: partial answers are kept; it takes no more rounds"
        )
    } else {
        format!(
            "Closed discussion {discussion_id} for good: it takes no more rounds; `moai open` starts a new one"
        )
    };
    match (session.out.mode, discussion) {
        (Mode::Json, Some(d)) => session.out.json(&d)?,
        _ => session.out.done(&text)?,
    }
    Ok(ExitCode::Success)
}
