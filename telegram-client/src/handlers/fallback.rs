//! `/fallback <seat> <model>`: a model that answers for a seat when the
//! seat's model fails before its first token. `/fallback <seat> none`
//! clears the seat's fallbacks; `/fallback` alone lists them.

use std::collections::HashMap;

use moai_proto::v1::{FallbackMap, ModelList, Project, UpdateProjectRequest};

use super::{Ctx, HandlerResult};
use crate::{commands, render::html::escape};

const USAGE: &str = "Usage: /fallback &lt;seat&gt; &lt;model&gt; adds a fallback for one of the project's models (tried in order when it fails before answering, at most 3); /fallback &lt;seat&gt; none removes them.";

/// The project's fallbacks as lines for `/project`: `seat → a, then b`.
#[must_use]
pub fn lines(project: &Project) -> Vec<String> {
    project
        .models
        .iter()
        .filter_map(|seat| {
            let list = project.fallbacks.get(seat)?;
            (!list.models.is_empty()).then(|| {
                let chain = list
                    .models
                    .iter()
                    .map(|m| format!("<code>{}</code>", escape(m)))
                    .collect::<Vec<_>>()
                    .join(", then ");
                format!("<code>{}</code> → {chain}", escape(seat))
            })
        })
        .collect()
}

/// The fallbacks after `/fallback <seat> <model>` (`none` clears the seat).
#[must_use]
pub fn edited(
    current: &HashMap<String, ModelList>,
    seat: &str,
    model: &str,
) -> HashMap<String, ModelList> {
    let mut fallbacks = current.clone();
    if model.eq_ignore_ascii_case("none") {
        fallbacks.remove(seat);
    } else {
        fallbacks
            .entry(seat.to_owned())
            .or_default()
            .models
            .push(model.to_owned());
    }
    fallbacks
}

pub(super) async fn fallback(ctx: &mut Ctx, args: &str) -> HandlerResult {
    let words = commands::words(args);
    let Some(project) = ctx.project().await? else {
        return Ok(());
    };
    let [seat, model] = words.as_slice() else {
        let current = lines(&project);
        let html = if current.is_empty() {
            USAGE.to_owned()
        } else {
            format!("Fallbacks:\n{}\n\n{USAGE}", current.join("\n"))
        };
        return ctx.reply(&html).await;
    };
    let request = UpdateProjectRequest {
        project_id: project.id.clone(),
        fallbacks: Some(FallbackMap {
            fallbacks: edited(&project.fallbacks, seat, model),
        }),
        ..Default::default()
    };
    match ctx.api.update_project(request).await {
        Ok(project) => {
            let current = lines(&project);
            let html = if current.is_empty() {
                "No fallbacks now.".to_owned()
            } else {
                format!("Fallbacks now:\n{}", current.join("\n"))
            };
            ctx.reply(&html).await
        }
        Err(status) => ctx.fail(&status).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallbacks_are_added_in_order_and_cleared_with_none() {
        let once = edited(&HashMap::new(), "a/x", "b/y");
        let twice = edited(&once, "a/x", "c/z");
        assert_eq!(twice["a/x"].models, ["b/y", "c/z"]);
        assert!(!edited(&twice, "a/x", "none").contains_key("a/x"));
        let project = Project {
            models: vec!["a/x".into(), "d/w".into()],
            fallbacks: twice,
            ..Default::default()
        };
        assert_eq!(
            lines(&project),
            ["<code>a/x</code> → <code>b/y</code>, then <code>c/z</code>"]
        );
    }
}
