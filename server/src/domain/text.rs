use super::InvalidInput;

/// Free text with a byte bound: a question, topic, mention or prompt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundedText(String);

impl BoundedText {
    /// Trims and checks `raw`; `what` names it in the error ("question").
    pub fn parse(raw: &str, what: &str, max_bytes: usize) -> Result<Self, InvalidInput> {
        let text = raw.trim();
        if text.is_empty() {
            return Err(InvalidInput::new(format!("{what} must not be empty")));
        }
        Self::parse_optional(text, what, max_bytes)
    }

    /// Like [`BoundedText::parse`] but an empty text is allowed.
    pub fn parse_optional(raw: &str, what: &str, max_bytes: usize) -> Result<Self, InvalidInput> {
        let text = raw.trim();
        if text.len() > max_bytes {
            return Err(InvalidInput::new(format!(
                "{what} is too long: {} bytes, at most {max_bytes}",
                text.len()
            )));
        }
        Ok(Self(text.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_and_emptiness() {
        assert!(BoundedText::parse("  ", "question", 10).is_err());
        assert!(BoundedText::parse("12345678901", "question", 10).is_err());
        assert_eq!(
            BoundedText::parse(" hi ", "question", 10)
                .expect("ok")
                .as_str(),
            "hi"
        );
        assert!(BoundedText::parse_optional("", "prompt", 10).is_ok());
    }
}
