//! `moai stop [<DISCUSSION>]`: cancel the running round.

use moai_proto::v1::StopDiscussionRequest;

use crate::args::DiscussionRef;
use crate::errors::{CliError, ExitCode};
use crate::output::Mode;
use crate::resolve;
use crate::session::Session;

/// Stops the discussion; partial answers are kept as interrupted.
///
/// # Errors
/// No discussion, the server's error.
pub async fn run(session: &mut Session, args: DiscussionRef) -> Result<ExitCode, CliError> {
    let discussion_id = resolve::discussion_id(session, args.discussion.as_deref()).await?;
    let client = session.client().await?;
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
    match (session.out.mode, discussion) {
        (Mode::Json, Some(d)) => session.out.json(&d)?,
        _ => session.out.done(&format!(
            "Stopped discussion {discussion_id}; it takes no more rounds"
        ))?,
    }
    Ok(ExitCode::Success)
}
