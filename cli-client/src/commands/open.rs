//! `moai open <QUESTION>`: all of the project's models answer at once.

use moai_proto::v1::OpenDiscussionRequest;

use crate::args::OpenArgs;
use crate::errors::{CliError, ExitCode};
use crate::session::Session;
use crate::{resolve, stream};

/// Asks the question and follows the round.
///
/// # Errors
/// No project, an empty question, the server's error.
pub async fn run(session: &mut Session, args: OpenArgs) -> Result<ExitCode, CliError> {
    let question = super::text_argument(&args.question, "question")?;
    let project = resolve::current_project(session).await?;
    let client = session.client().await?;
    let request = OpenDiscussionRequest {
        project_id: project.id,
        question,
    };
    let events = client
        .discussions
        .clone()
        .open_discussion(request)
        .await
        .map_err(client.error("OpenDiscussion"))?
        .into_inner();
    stream::follow(session, events, client.error("OpenDiscussion")).await
}
