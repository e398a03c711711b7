//! `moai review`: the models rank each other's answers of a round anonymously.

use moai_proto::v1::ReviewDiscussionRequest;

use crate::args::ReviewArgs;
use crate::errors::{CliError, ExitCode};
use crate::session::Session;
use crate::{resolve, stream};

/// Asks for the review and follows it: the reviews stream, then the leaderboard.
///
/// # Errors
/// No discussion, a round without answers to review, the server's error.
pub async fn run(session: &mut Session, args: ReviewArgs) -> Result<ExitCode, CliError> {
    let discussion_id = resolve::discussion_id(session, args.discussion.as_deref()).await?;
    let client = session.client().await?;
    let events = client
        .discussions
        .clone()
        .review_discussion(ReviewDiscussionRequest {
            discussion_id,
            round: args.round,
        })
        .await
        .map_err(client.error("ReviewDiscussion"))?
        .into_inner();
    stream::follow(session, events, client.error("ReviewDiscussion")).await
}
