//! `moai summarize`: one model writes the consensus.

use moai_proto::v1::SummarizeDiscussionRequest;

use crate::args::SummarizeArgs;
use crate::errors::{CliError, ExitCode};
use crate::session::Session;
use crate::{resolve, stream};

/// Asks for the summary and follows it.
///
/// # Errors
/// No discussion, an ambiguous model, the server's error.
pub async fn run(session: &mut Session, args: SummarizeArgs) -> Result<ExitCode, CliError> {
    let discussion_id = resolve::discussion_id(session, args.discussion.as_deref()).await?;
    let client = session.client().await?;
    let model = match args.model {
        Some(wanted) => resolve::model(&client, &discussion_id, &wanted).await?,
        None => String::new(),
    };
    let events = client
        .discussions
        .clone()
        .summarize_discussion(SummarizeDiscussionRequest {
            discussion_id,
            model,
        })
        .await
        .map_err(client.error("SummarizeDiscussion"))?
        .into_inner();
    stream::follow(session, events, client.error("SummarizeDiscussion")).await
}
