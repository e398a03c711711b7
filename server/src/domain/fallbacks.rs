use std::collections::BTreeMap;

use super::{InvalidInput, ModelId, ModelList};

/// A project's fallbacks per seat: seat model id -> the models that answer
/// in its place, in order, when it fails before its first token. Every seat
/// is one of the project's models; a seat's list has no duplicates, never
/// its seat, and at most [`Fallbacks::MAX_PER_SEAT`] models.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Fallbacks(BTreeMap<String, Vec<String>>);

impl Fallbacks {
    /// Most fallbacks one seat may have.
    pub const MAX_PER_SEAT: usize = 3;

    /// Checks raw fallbacks against the project's `seats`.
    pub fn parse<S: AsRef<str>>(
        raw: impl IntoIterator<Item = (S, Vec<String>)>,
        seats: &ModelList,
    ) -> Result<Self, InvalidInput> {
        let mut out = BTreeMap::new();
        for (seat, models) in raw {
            let seat = ModelId::parse(seat.as_ref())?;
            if !seats.ids().contains(&seat) {
                return Err(InvalidInput::new(format!(
                    "fallbacks for {seat}: it is not one of the project's models"
                )));
            }
            if models.len() > Self::MAX_PER_SEAT {
                return Err(InvalidInput::new(format!(
                    "{seat} has {} fallbacks; at most {} are allowed",
                    models.len(),
                    Self::MAX_PER_SEAT
                )));
            }
            let mut list: Vec<String> = Vec::with_capacity(models.len());
            for raw in &models {
                let model = ModelId::parse(raw)?;
                if model == seat {
                    return Err(InvalidInput::new(format!(
                        "{seat} cannot be its own fallback"
                    )));
                }
                if list.iter().any(|m| m == model.as_str()) {
                    return Err(InvalidInput::new(format!(
                        "fallback {model} is listed twice for {seat}"
                    )));
                }
                list.push(model.as_str().to_owned());
            }
            if !list.is_empty() {
                out.insert(seat.as_str().to_owned(), list);
            }
        }
        Ok(Self(out))
    }

    /// Checked fallbacks as stored (trusted).
    pub fn from_stored(map: BTreeMap<String, Vec<String>>) -> Self {
        Self(map)
    }

    /// The fallbacks of `seat`, in order.
    pub fn of(&self, seat: &str) -> &[String] {
        self.0.get(seat).map_or(&[], Vec::as_slice)
    }

    /// Seat -> fallbacks.
    pub fn as_map(&self) -> &BTreeMap<String, Vec<String>> {
        &self.0
    }

    /// Every fallback model, once each.
    pub fn models(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self.0.values().flatten().map(String::as_str).collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// Keeps only the seats still among `seats` (a removed seat loses its fallbacks).
    pub fn retain_seats(&mut self, seats: &[String]) {
        self.0.retain(|seat, _| seats.contains(seat));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seats() -> ModelList {
        ModelList::parse(&["a/x", "b/y"], 16).unwrap_or_default()
    }

    fn parse(raw: &[(&str, &[&str])]) -> Result<Fallbacks, InvalidInput> {
        Fallbacks::parse(
            raw.iter()
                .map(|(s, m)| (*s, m.iter().map(|m| (*m).to_owned()).collect())),
            &seats(),
        )
    }

    #[test]
    fn good_fallbacks_keep_their_order() -> Result<(), InvalidInput> {
        let f = parse(&[("a/x", &["c/z", "d/w"]), ("b/y", &[])])?;
        assert_eq!(f.of("a/x"), ["c/z", "d/w"]);
        assert!(f.of("b/y").is_empty(), "an empty list is no entry");
        assert_eq!(f.models(), ["c/z", "d/w"]);
        Ok(())
    }

    #[test]
    fn bad_fallbacks_name_what_is_wrong() {
        let err = |raw: &[(&str, &[&str])]| parse(raw).err().map(|e| e.0).unwrap_or_default();
        assert_eq!(
            err(&[("q/q", &["c/z"])]),
            "fallbacks for q/q: it is not one of the project's models"
        );
        assert_eq!(err(&[("a/x", &["a/x"])]), "a/x cannot be its own fallback");
        assert_eq!(
            err(&[("a/x", &["c/z", "c/z"])]),
            "fallback c/z is listed twice for a/x"
        );
        assert_eq!(
            err(&[("a/x", &["c/1", "c/2", "c/3", "c/4"])]),
            "a/x has 4 fallbacks; at most 3 are allowed"
        );
        assert!(err(&[("a/x", &["no slash"])]).contains("is not of the form vendor/model"));
    }

    #[test]
    fn a_removed_seat_loses_its_fallbacks() -> Result<(), InvalidInput> {
        let mut f = parse(&[("a/x", &["c/z"]), ("b/y", &["d/w"])])?;
        f.retain_seats(&["b/y".to_owned()]);
        assert!(f.of("a/x").is_empty());
        assert_eq!(f.of("b/y"), ["d/w"]);
        Ok(())
    }
}
