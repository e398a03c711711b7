//! `moai discuss` and `moai next`: rounds in turns, each model seeing what was
//! said before.

use moai_proto::v1::{NextRoundRequest, StartDiscussionRequest};

use crate::args::{DiscussArgs, DiscussionRef, join_words};
use crate::errors::{CliError, ExitCode};
use crate::session::Session;
use crate::{resolve, stream};

/// Starts a discussion on a topic, or continues the current (or given) one.
///
/// # Errors
/// No project or discussion, the server's error.
pub async fn run(session: &mut Session, args: DiscussArgs) -> Result<ExitCode, CliError> {
    let topic = join_words(&args.topic);
    let rounds = args.rounds.unwrap_or(0);
    let request = if topic.is_empty() {
        let discussion_id = resolve::discussion_id(session, args.discussion.as_deref()).await?;
        StartDiscussionRequest {
            discussion_id,
            rounds,
            until_consensus: args.until_consensus,
            ..Default::default()
        }
    } else {
        let topic = super::text_argument(&args.topic, "topic")?;
        let project = resolve::current_project(session).await?;
        StartDiscussionRequest {
            project_id: project.id,
            topic,
            rounds,
            until_consensus: args.until_consensus,
            ..Default::default()
        }
    };
    let client = session.client().await?;
    let events = client
        .discussions
        .clone()
        .start_discussion(request)
        .await
        .map_err(client.error("StartDiscussion"))?
        .into_inner();
    stream::follow(session, events, client.error("StartDiscussion")).await
}

/// Runs one more round of the current (or given) discussion.
///
/// # Errors
/// No discussion, the server's error.
pub async fn next(session: &mut Session, args: DiscussionRef) -> Result<ExitCode, CliError> {
    let discussion_id = resolve::discussion_id(session, args.discussion.as_deref()).await?;
    let client = session.client().await?;
    let events = client
        .discussions
        .clone()
        .next_round(NextRoundRequest { discussion_id })
        .await
        .map_err(client.error("NextRound"))?
        .into_inner();
    stream::follow(session, events, client.error("NextRound")).await
}
