use super::InvalidInput;

/// A project name: 1-100 characters after trimming, no control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectName(String);

impl ProjectName {
    /// Longest name, in characters.
    pub const MAX_CHARS: usize = 100;

    /// Trims and checks a name.
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(InvalidInput::new("project name must not be empty"));
        }
        if name.chars().count() > Self::MAX_CHARS {
            return Err(InvalidInput::new(format!(
                "project name must be at most {} characters",
                Self::MAX_CHARS
            )));
        }
        if name.chars().any(char::is_control) {
            return Err(InvalidInput::new(
                "project name must not contain control characters",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_bounds() {
        assert_eq!(
            ProjectName::parse("  Rust async  ").expect("ok").as_str(),
            "Rust async"
        );
        assert!(ProjectName::parse("   ").is_err());
        assert!(ProjectName::parse(&"é".repeat(100)).is_ok());
        assert!(ProjectName::parse(&"é".repeat(101)).is_err());
        assert!(ProjectName::parse("a\nb").is_err());
    }
}
