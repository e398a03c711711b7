use super::InvalidInput;

/// The id of a discussion as a caller names it: trimmed and not empty.
/// Whether it exists (for that caller) is the engine's question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscussionId(String);

impl DiscussionId {
    /// Trims `raw`; an empty id is refused.
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        required(raw, "discussion_id").map(Self)
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The id of a project as a caller names it: trimmed and not empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectId(String);

impl ProjectId {
    /// Trims `raw`; an empty id is refused, naming the field as `what`.
    pub fn parse(raw: &str, what: &str) -> Result<Self, InvalidInput> {
        required(raw, what).map(Self)
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

fn required(raw: &str, what: &str) -> Result<String, InvalidInput> {
    let id = raw.trim();
    if id.is_empty() {
        Err(InvalidInput::new(format!("{what} is required")))
    } else {
        Ok(id.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_trimmed_and_must_not_be_empty() {
        assert_eq!(
            DiscussionId::parse(" abc ").map(|d| d.as_str().to_owned()),
            Ok("abc".to_owned())
        );
        assert_eq!(
            DiscussionId::parse("  ").err().map(|e| e.0),
            Some("discussion_id is required".to_owned())
        );
        assert_eq!(
            ProjectId::parse("", "project_id").err().map(|e| e.0),
            Some("project_id is required".to_owned())
        );
    }
}
