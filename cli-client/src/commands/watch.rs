//! `moai watch [<DISCUSSION>] [--after SEQ]`: re-attach to a run.

use moai_proto::v1::WatchDiscussionRequest;

use crate::args::WatchArgs;
use crate::errors::{CliError, ExitCode};
use crate::session::Session;
use crate::{resolve, stream};

/// Replays what came after `--after`, then follows the run until it is idle.
///
/// # Errors
/// No discussion, the server's error.
pub async fn run(session: &mut Session, args: WatchArgs) -> Result<ExitCode, CliError> {
    let discussion_id = resolve::discussion_id(session, args.discussion.as_deref()).await?;
    let client = session.client().await?;
    let events = client
        .discussions
        .clone()
        .watch_discussion(WatchDiscussionRequest {
            discussion_id,
            after_seq: args.after,
        })
        .await
        .map_err(client.error("WatchDiscussion"))?
        .into_inner();
    stream::follow(session, events, client.error("WatchDiscussion")).await
}
