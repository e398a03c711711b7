//! `moai watch [<DISCUSSION>] [--after SEQ]`: re-attach to a run.

use moai_proto::EventResponse;
use moai_proto::v1::discussion_event::Payload;
use moai_proto::v1::{DiscussionStatus, WatchDiscussionRequest};

use crate::args::WatchArgs;
use crate::client::Client;
use crate::errors::{CliError, ExitCode};
use crate::render::progress::Progress;
use crate::session::Session;
use crate::{resolve, stream};

/// Replays what came after `--after`, then follows the run until it is idle.
/// What the run did up to `--after` is read first and counted, not shown, so
/// the footer tallies the whole run and an answer being written shows whole.
///
/// # Errors
/// No discussion, the server's error.
pub async fn run(session: &mut Session, args: WatchArgs) -> Result<ExitCode, CliError> {
    let discussion_id = resolve::discussion_id(session, args.discussion.as_deref()).await?;
    let client = session.client().await?;
    let progress = if args.after > 0 {
        run_so_far(&client, &discussion_id, args.after).await?
    } else {
        Progress::new()
    };
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
    stream::follow_from(session, events, client.error("WatchDiscussion"), progress).await
}

/// The run that was going at `after`, folded from its events up to there.
async fn run_so_far(
    client: &Client,
    discussion_id: &str,
    after: u64,
) -> Result<Progress, CliError> {
    let errors = client.error("WatchDiscussion");
    let mut events = client
        .discussions
        .clone()
        .watch_discussion(WatchDiscussionRequest {
            discussion_id: discussion_id.to_string(),
            after_seq: 0,
        })
        .await
        .map_err(&errors)?
        .into_inner();
    let mut progress = Progress::new();
    while let Some(response) = events.message().await.map_err(&errors)? {
        let Some(event) = response.into_event() else {
            continue;
        };
        if event.seq > after {
            break;
        }
        let starts_a_run = match &event.payload {
            Some(Payload::DiscussionStarted(_)) => true,
            Some(Payload::StatusChanged(s)) => s.status == DiscussionStatus::Running as i32,
            _ => false,
        };
        if starts_a_run {
            progress = Progress::new();
        }
        progress.apply(&event);
    }
    Ok(progress)
}
