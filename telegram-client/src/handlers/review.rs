//! `/review`: the models rank each other's answers of a round anonymously;
//! the run renders the reviews, then the leaderboard message.

use super::{Ctx, HandlerResult};
use crate::stream;

pub(super) async fn review(ctx: &mut Ctx, args: &str) -> HandlerResult {
    let round = match args.trim() {
        "" => None,
        n => match n.parse::<u32>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                return ctx
                    .reply("Usage: /review [round], e.g. <code>/review</code> or <code>/review 2</code>")
                    .await;
            }
        },
    };
    let Some(discussion_id) = ctx.discussion_id().await? else {
        return Ok(());
    };
    let mut api = ctx.api.clone();
    let view = ctx.view();
    let known = Some(discussion_id.clone());
    ctx.start_run("peer review", async move {
        stream::render(view, known, async move {
            api.review(&discussion_id, round).await
        })
        .await;
    })
    .await
}
