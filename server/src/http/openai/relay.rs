//! The members of an open round answer at once, so their streamed deltas
//! interleave. A chat UI shows one reasoning text: one member streams live
//! at a time, under its model's name, and the others' text is held and
//! written whole as soon as the live one finishes.

/// The members' answers as one readable text, produced piece by piece.
#[derive(Debug, Default)]
pub struct Relay {
    members: Vec<Member>,
    /// The member streaming live.
    focus: Option<usize>,
}

#[derive(Debug)]
struct Member {
    id: String,
    model: String,
    text: String,
    /// Bytes of `text` already written.
    sent: usize,
    labelled: bool,
    done: bool,
    error: Option<String>,
}

impl Member {
    /// What of this member has not been written yet, label first.
    fn take(&mut self) -> String {
        let mut out = String::new();
        if !self.labelled {
            self.labelled = true;
            out.push_str(&format!("### {}\n\n", self.model));
        }
        out.push_str(self.text.get(self.sent..).unwrap_or_default());
        self.sent = self.text.len();
        if self.done {
            if let Some(error) = &self.error {
                let gap = if self.text.is_empty() { "" } else { "\n\n" };
                out.push_str(&format!("{gap}_({} failed: {error})_", self.model));
            }
            out.push_str("\n\n");
        }
        out
    }
}

impl Relay {
    /// A member's message began.
    pub fn started(&mut self, id: &str, model: &str) {
        if self.index(id).is_none() {
            self.members.push(Member {
                id: id.to_owned(),
                model: model.to_owned(),
                text: String::new(),
                sent: 0,
                labelled: false,
                done: false,
                error: None,
            });
        }
    }

    /// Text arrived for a member; returns what to write now.
    pub fn delta(&mut self, id: &str, text: &str) -> String {
        let Some(i) = self.index(id) else {
            return String::new();
        };
        self.members[i].text.push_str(text);
        match self.focus {
            None => {
                self.focus = Some(i);
                self.members[i].take()
            }
            Some(f) if f == i => self.members[i].take(),
            Some(_) => String::new(),
        }
    }

    /// A member finished with `content` as stored (and `error` if it
    /// failed); returns what to write now.
    pub fn finished(&mut self, id: &str, content: &str, error: Option<&str>) -> String {
        let Some(i) = self.index(id) else {
            return String::new();
        };
        let m = &mut self.members[i];
        // The stored text is the whole answer; the deltas were its start.
        if content.len() >= m.text.len() {
            m.text = content.to_owned();
        }
        m.done = true;
        m.error = error.map(str::to_owned);
        if self.focus.is_some_and(|f| f != i) {
            return String::new();
        }
        let mut out = self.members[i].take();
        self.focus = None;
        // Everyone else who finished meanwhile, in the order they started.
        for m in self
            .members
            .iter_mut()
            .filter(|m| m.done && (m.sent < m.text.len() || !m.labelled))
        {
            out.push_str(&m.take());
        }
        // The next one still answering goes live.
        if let Some(next) = self
            .members
            .iter()
            .position(|m| !m.done && !m.text.is_empty())
        {
            self.focus = Some(next);
            out.push_str(&self.members[next].take());
        }
        out
    }

    /// Whether any member answered.
    pub fn any_answer(&self) -> bool {
        self.members
            .iter()
            .any(|m| m.error.is_none() && !m.text.trim().is_empty())
    }

    /// Why the members failed, for an error message.
    pub fn failures(&self) -> String {
        self.members
            .iter()
            .filter_map(|m| m.error.as_ref().map(|e| format!("{}: {e}", m.model)))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn index(&self, id: &str) -> Option<usize> {
        self.members.iter().position(|m| m.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::Relay;

    #[test]
    fn one_member_streams_live_and_the_others_follow_whole() {
        let mut r = Relay::default();
        r.started("a", "m/a");
        r.started("b", "m/b");
        let mut out = r.delta("b", "B1 ");
        out += &r.delta("a", "A1 ");
        out += &r.delta("b", "B2");
        assert_eq!(out, "### m/b\n\nB1 B2", "b went live first; a is held");
        out += &r.finished("b", "B1 B2", None);
        assert_eq!(out, "### m/b\n\nB1 B2\n\n### m/a\n\nA1 ");
        out += &r.delta("a", "A2");
        out += &r.finished("a", "A1 A2", None);
        assert_eq!(out, "### m/b\n\nB1 B2\n\n### m/a\n\nA1 A2\n\n");
        assert!(r.any_answer());
    }

    #[test]
    fn held_members_that_finished_are_written_when_the_live_one_ends() {
        let mut r = Relay::default();
        r.started("a", "m/a");
        r.started("b", "m/b");
        r.started("c", "m/c");
        let mut out = r.delta("a", "A");
        out += &r.finished("b", "B", None);
        out += &r.finished("c", "", Some("timed out"));
        assert_eq!(out, "### m/a\n\nA", "b and c wait for a");
        out += &r.finished("a", "A!", None);
        assert_eq!(
            out,
            "### m/a\n\nA!\n\n### m/b\n\nB\n\n### m/c\n\n_(m/c failed: timed out)_\n\n"
        );
        assert_eq!(r.failures(), "m/c: timed out");
    }

    #[test]
    fn no_answer_when_every_member_failed() {
        let mut r = Relay::default();
        r.started("a", "m/a");
        let _ = r.finished("a", "", Some("HTTP 500"));
        assert!(!r.any_answer());
    }
}
