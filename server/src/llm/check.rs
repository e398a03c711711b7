//! Model ids checked against the providers' catalogue (their cached
//! `/models`): an id nobody offers is named with the closest ids offered; an
//! id whose provider could not list its models is let through with a note.

use super::models::Catalogue;
use super::router::Router;
use super::settings::LlmSettings;
use super::suggest::closest;

/// What a check found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelCheck {
    /// Ids no provider offers, each with the closest ids offered.
    pub unknown: Vec<(String, Vec<String>)>,
    /// Notes on ids that could not be checked (accepted as they are).
    pub unchecked: Vec<String>,
}

impl ModelCheck {
    /// The refusal of the unknown ids, naming suggestions; `None` when all
    /// are known (or could not be checked).
    pub fn refusal(&self) -> Option<String> {
        let parts: Vec<String> = self
            .unknown
            .iter()
            .map(|(id, near)| match near.as_slice() {
                [] => format!("no provider offers model {id}"),
                near => format!(
                    "no provider offers model {id} (did you mean {}?)",
                    near.join(" or ")
                ),
            })
            .collect();
        (!parts.is_empty()).then(|| {
            format!(
                "{}; `moai models` lists the models offered",
                parts.join("; ")
            )
        })
    }
}

/// Checks `ids` (aliases allowed) against `catalogue`.
pub(crate) fn check(
    ids: &[String],
    catalogue: &Catalogue,
    router: &Router,
    settings: &LlmSettings,
) -> ModelCheck {
    let mut out = ModelCheck::default();
    for id in ids {
        let full = settings.resolve_alias(id);
        let Ok(route) = router.route(settings, &full) else {
            let near = closest(&full, catalogue.models.iter().map(|m| m.id.as_str()));
            out.unknown.push((id.clone(), near));
            continue;
        };
        let provider = route.provider.settings();
        if !provider.check_models {
            continue;
        }
        if catalogue.unlisted.contains(&provider.name) {
            out.unchecked.push(format!(
                "model {id} could not be checked: the model list of provider {} could not be fetched; it is accepted as it is",
                provider.name
            ));
            continue;
        }
        let offered = catalogue
            .models
            .iter()
            .any(|m| m.id == full && m.provider == provider.name);
        if !offered {
            let near = closest(
                &full,
                catalogue
                    .models
                    .iter()
                    .filter(|m| m.provider == provider.name)
                    .map(|m| m.id.as_str()),
            );
            out.unknown.push((id.clone(), near));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_names_each_id_and_its_suggestions() {
        let check = ModelCheck {
            unknown: vec![
                (
                    "anthropic/claude-sonet-4.5".into(),
                    vec!["anthropic/claude-sonnet-4.5".into()],
                ),
                ("zz/top".into(), vec![]),
            ],
            unchecked: vec![],
        };
        assert_eq!(
            check.refusal().as_deref(),
            Some(
                "no provider offers model anthropic/claude-sonet-4.5 (did you mean anthropic/claude-sonnet-4.5?); \
                 no provider offers model zz/top; `moai models` lists the models offered"
            )
        );
        assert_eq!(ModelCheck::default().refusal(), None);
    }
}
