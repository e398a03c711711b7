//! `moai ask <MODEL> <MESSAGE>`: the @mention, with the discussion as context.

use moai_proto::v1::MentionRequest;

use crate::args::AskArgs;
use crate::errors::{CliError, ExitCode};
use crate::session::Session;
use crate::{resolve, stream};

/// Speaks to one model and follows its answer.
///
/// # Errors
/// No discussion, an empty message, an ambiguous model, the server's error.
pub async fn run(session: &mut Session, args: AskArgs) -> Result<ExitCode, CliError> {
    let (model, message) = args.target();
    if model.is_empty() {
        return Err(CliError::Usage(
            "name the model: moai ask @<model> <message>".into(),
        ));
    }
    let content = super::text_argument(&[message], "message")?;
    let discussion_id = resolve::discussion_id(session, args.discussion.as_deref()).await?;
    let client = session.client().await?;
    let model = resolve::model(&client, &discussion_id, &model).await?;
    let events = client
        .discussions
        .clone()
        .mention(MentionRequest {
            discussion_id,
            model,
            content,
            ..Default::default()
        })
        .await
        .map_err(client.error("Mention"))?
        .into_inner();
    stream::follow(session, events, client.error("Mention")).await
}
