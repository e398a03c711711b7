//! Fallbacks per seat on the command line: `--fallback SEAT=MODEL` (repeat
//! for more, in order) and how `project show` lists them.

use std::collections::HashMap;

use moai_proto::v1::{ModelList, Project};

use crate::errors::CliError;

/// `SEAT=MODEL` pairs, in order, as the server takes them: seat -> fallbacks.
/// The server checks the rest (seats, duplicates, at most 3 per seat).
///
/// # Errors
/// `CliError::Usage` for a pair without `=` or with an empty side.
pub fn parse(pairs: &[String]) -> Result<HashMap<String, ModelList>, CliError> {
    let mut map: HashMap<String, ModelList> = HashMap::new();
    for pair in pairs {
        let (seat, model) = pair
            .split_once('=')
            .map(|(s, m)| (s.trim(), m.trim()))
            .filter(|(s, m)| !s.is_empty() && !m.is_empty())
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "--fallback {pair:?}: expected SEAT=MODEL, such as openai/gpt-4o=openai/gpt-4o-mini"
                ))
            })?;
        map.entry(seat.to_string())
            .or_default()
            .models
            .push(model.to_string());
    }
    Ok(map)
}

/// The fallbacks of `seat`, as `project show` writes them after the seat:
/// ` (falls back to a, then b)`; empty when it has none.
pub fn suffix(project: &Project, seat: &str) -> String {
    match project.fallbacks.get(seat) {
        Some(list) if !list.models.is_empty() => {
            format!(" (falls back to {})", list.models.join(", then "))
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_group_by_seat_in_order() -> Result<(), CliError> {
        let map = parse(&["a/x=b/y".into(), " a/x = c/z ".into(), "d/w=e/v".into()])?;
        assert_eq!(map["a/x"].models, ["b/y", "c/z"]);
        assert_eq!(map["d/w"].models, ["e/v"]);
        assert!(parse(&["a/x".into()]).is_err());
        assert!(parse(&["=b/y".into()]).is_err());
        assert!(parse(&["a/x=".into()]).is_err());
        Ok(())
    }

    #[test]
    fn show_names_fallbacks_in_order() -> Result<(), CliError> {
        let project = Project {
            fallbacks: parse(&["a/x=b/y".into(), "a/x=c/z".into()])?,
            ..Default::default()
        };
        assert_eq!(suffix(&project, "a/x"), " (falls back to b/y, then c/z)");
        assert_eq!(suffix(&project, "d/w"), "");
        Ok(())
    }
}
