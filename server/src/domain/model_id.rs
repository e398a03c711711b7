use super::InvalidInput;

/// A model id such as `openai/gpt-4o` or `anthropic/claude-sonnet-4:beta`:
/// `vendor/model`, no spaces, at most 128 characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModelId(String);

impl ModelId {
    /// Longest id, in bytes.
    pub const MAX_LEN: usize = 128;

    /// Checks an id; a leading `@` (as typed in a mention) is dropped.
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let id = raw.trim().trim_start_matches('@');
        let bad = || {
            InvalidInput::new(format!(
                "model id {raw:?} is not of the form vendor/model (such as openai/gpt-4o)"
            ))
        };
        if id.is_empty() || id.len() > Self::MAX_LEN {
            return Err(bad());
        }
        let (vendor, model) = id.split_once('/').ok_or_else(bad)?;
        let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.:/+@".contains(c);
        if vendor.is_empty()
            || model.is_empty()
            || model.starts_with('/')
            || model.ends_with('/')
            || !id.chars().all(allowed)
        {
            return Err(bad());
        }
        Ok(Self(id.to_owned()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ModelId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A project's models: ordered, no duplicates, at most `max` of them.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ModelList(Vec<ModelId>);

impl ModelList {
    /// Checks a list of raw ids.
    pub fn parse<S: AsRef<str>>(raw: &[S], max: usize) -> Result<Self, InvalidInput> {
        let ids = raw
            .iter()
            .map(|s| ModelId::parse(s.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_ids(ids, max)
    }

    /// Checks a list of parsed ids.
    pub fn from_ids(ids: Vec<ModelId>, max: usize) -> Result<Self, InvalidInput> {
        if ids.len() > max {
            return Err(InvalidInput::new(format!(
                "a project may have at most {max} models, got {}",
                ids.len()
            )));
        }
        for (i, id) in ids.iter().enumerate() {
            if ids[..i].contains(id) {
                return Err(InvalidInput::new(format!("model {id} is listed twice")));
            }
        }
        Ok(Self(ids))
    }

    /// The ids in order.
    pub fn ids(&self) -> &[ModelId] {
        &self.0
    }

    /// The ids as strings, in order.
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(|m| m.as_str().to_owned()).collect()
    }

    /// Appends models; one already present is an error.
    pub fn add(&mut self, ids: Vec<ModelId>, max: usize) -> Result<(), InvalidInput> {
        for id in ids {
            if self.0.contains(&id) {
                return Err(InvalidInput::new(format!(
                    "model {id} is already in the project"
                )));
            }
            self.0.push(id);
        }
        let all = std::mem::take(&mut self.0);
        *self = Self::from_ids(all, max)?;
        Ok(())
    }

    /// Removes models; one not present is an error.
    pub fn remove(&mut self, ids: &[ModelId]) -> Result<(), InvalidInput> {
        for id in ids {
            let before = self.0.len();
            self.0.retain(|m| m != id);
            if self.0.len() == before {
                return Err(InvalidInput::new(format!(
                    "model {id} is not in the project"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_vendor_model_forms() {
        for ok in [
            "openai/gpt-4o",
            "anthropic/claude-sonnet-4",
            "meta-llama/llama-3.1-8b:free",
            "@x/y",
        ] {
            assert!(ModelId::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(ModelId::parse("@x/y").expect("ok").as_str(), "x/y");
    }

    #[test]
    fn refuses_malformed_ids() {
        for bad in [
            "",
            "gpt-4o",
            "/gpt",
            "openai/",
            "open ai/gpt",
            "a/b c",
            "a/<b>",
        ] {
            assert!(ModelId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lists_bound_and_deduplicate() {
        assert!(ModelList::parse(&["a/x", "a/x"], 16).is_err());
        let many: Vec<String> = (0..17).map(|i| format!("v/m{i}")).collect();
        assert!(ModelList::parse(&many, 16).is_err());
        let mut list = ModelList::parse(&["a/x", "b/y"], 16).expect("ok");
        list.add(vec![ModelId::parse("c/z").expect("ok")], 16)
            .expect("add");
        assert!(
            list.add(vec![ModelId::parse("a/x").expect("ok")], 16)
                .is_err()
        );
        list.remove(&[ModelId::parse("a/x").expect("ok")])
            .expect("remove");
        assert_eq!(list.to_strings(), ["b/y", "c/z"]);
        assert!(list.remove(&[ModelId::parse("q/q").expect("ok")]).is_err());
    }
}
