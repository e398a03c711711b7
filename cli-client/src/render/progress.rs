//! What a run has done so far, folded from its events: every message with its
//! model, text and outcome, the current round, and the last seq seen.

use std::time::Instant;

use moai_proto::v1::discussion_event::Payload;
use moai_proto::v1::{
    DiscussionEvent, DiscussionStatus, Message, MessageRole, MessageStatus, RoundMode,
};

/// Where one message stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Text is arriving.
    Streaming,
    /// Committed: the whole answer.
    Complete,
    /// Committed, cut short by a stop.
    Interrupted,
    /// The model call failed.
    Failed,
}

/// One message of the run.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The message id.
    pub id: String,
    /// The model writing it.
    pub model: String,
    /// Its round.
    pub round: u32,
    /// Its text so far (or the final content).
    pub text: String,
    /// Where it stands.
    pub phase: Phase,
    /// When this client saw it start.
    pub started: Instant,
    /// The stored message, once completed.
    pub message: Option<Message>,
    /// Why it failed.
    pub error: Option<String>,
    /// The model's thinking so far (kept apart from the answer).
    pub reasoning: String,
    /// How long it waited for a slot at its provider, when it said so.
    pub queued_ms: Option<u64>,
    /// The fallback answering for the seat's model, when one does.
    pub answered_by: Option<String>,
}

/// The current round.
#[derive(Debug, Clone)]
pub struct RoundInfo {
    /// Its number.
    pub number: u32,
    /// Its mode.
    pub mode: RoundMode,
    /// The models that speak in it, in order.
    pub models: Vec<String>,
}

/// Everything known about the run.
#[derive(Debug)]
pub struct Progress {
    /// The discussion (from the first event).
    pub discussion_id: String,
    /// The question or topic, when a `discussion_started` event said it.
    pub question: Option<String>,
    /// The greatest seq seen.
    pub last_seq: u64,
    /// Messages in the order they started.
    pub entries: Vec<Entry>,
    /// The round in progress or last seen.
    pub round: Option<RoundInfo>,
    /// The discussion's last known status.
    pub status: Option<DiscussionStatus>,
    /// When this client started following.
    pub started: Instant,
    /// What is left of the caller's daily budget once the run ended
    /// (`None`: unlimited or unknown).
    pub left_today: Option<f64>,
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress {
    /// Nothing seen yet.
    pub fn new() -> Self {
        Progress {
            discussion_id: String::new(),
            question: None,
            last_seq: 0,
            entries: Vec::new(),
            round: None,
            status: None,
            started: Instant::now(),
            left_today: None,
        }
    }

    /// Folds one event in; returns the index of the entry it touched, if any.
    pub fn apply(&mut self, event: &DiscussionEvent) -> Option<usize> {
        if self.discussion_id.is_empty() {
            self.discussion_id.clone_from(&event.discussion_id);
        }
        self.last_seq = self.last_seq.max(event.seq);
        match event.payload.as_ref()? {
            Payload::DiscussionStarted(started) => {
                if let Some(d) = &started.discussion {
                    self.discussion_id.clone_from(&d.id);
                    self.question = Some(d.question.clone());
                }
                None
            }
            Payload::RoundStarted(r) => {
                self.round = Some(RoundInfo {
                    number: r.number,
                    mode: RoundMode::try_from(r.mode).unwrap_or(RoundMode::Unspecified),
                    models: r.models.clone(),
                });
                None
            }
            Payload::MessageStarted(m) => Some(self.entry(&m.message_id, &m.model, m.round)),
            Payload::MessageDelta(d) => {
                let i = self.entry(&d.message_id, &d.model, 0);
                self.entries[i].text.push_str(&d.text);
                self.entries[i].reasoning.push_str(&d.reasoning);
                Some(i)
            }
            Payload::MessageCompleted(c) => {
                let message = c.message.as_ref()?;
                if message.role == MessageRole::User as i32 {
                    // The user's own words (a mention): they know what they said.
                    return None;
                }
                let i = self.entry(&message.id, &message.model, message.round);
                let entry = &mut self.entries[i];
                entry.text.clone_from(&message.content);
                if !message.reasoning.is_empty() {
                    entry.reasoning.clone_from(&message.reasoning);
                }
                if !message.answered_by.is_empty() {
                    entry.answered_by = Some(message.answered_by.clone());
                }
                entry.phase = match MessageStatus::try_from(message.status) {
                    Ok(MessageStatus::Interrupted) => Phase::Interrupted,
                    Ok(MessageStatus::Failed) => Phase::Failed,
                    _ => Phase::Complete,
                };
                if !message.error.is_empty() {
                    entry.error = Some(message.error.clone());
                }
                entry.message = Some(message.clone());
                Some(i)
            }
            Payload::MessageFailed(f) => {
                let i = self.entry(&f.message_id, &f.model, 0);
                let entry = &mut self.entries[i];
                entry.phase = Phase::Failed;
                entry.error = Some(f.error.clone());
                if !f.answered_by.is_empty() {
                    entry.answered_by = Some(f.answered_by.clone());
                }
                if !f.content.is_empty() {
                    entry.text.clone_from(&f.content);
                }
                Some(i)
            }
            Payload::RoundCompleted(_) => None,
            Payload::MessageQueued(q) => {
                let i = self.entry(&q.message_id, &q.model, 0);
                self.entries[i].queued_ms = Some(q.queued_ms);
                Some(i)
            }
            Payload::MessageFallback(f) => {
                let i = self.entry(&f.message_id, &f.model, 0);
                self.entries[i].answered_by = Some(f.answered_by.clone());
                self.entries[i].queued_ms = None;
                Some(i)
            }
            Payload::StatusChanged(s) => {
                self.status = DiscussionStatus::try_from(s.status).ok();
                None
            }
        }
    }

    /// The entry of `id`, made when it was not seen starting (a re-attach).
    fn entry(&mut self, id: &str, model: &str, round: u32) -> usize {
        if let Some(i) = self.entries.iter().position(|e| e.id == id) {
            return i;
        }
        let round = if round == 0 {
            self.round.as_ref().map_or(0, |r| r.number)
        } else {
            round
        };
        self.entries.push(Entry {
            id: id.to_string(),
            model: model.to_string(),
            round,
            text: String::new(),
            phase: Phase::Streaming,
            started: Instant::now(),
            message: None,
            error: None,
            reasoning: String::new(),
            queued_ms: None,
            answered_by: None,
        });
        self.entries.len() - 1
    }

    /// Messages still being written.
    pub fn streaming(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.phase == Phase::Streaming)
    }

    /// Models of the current round that have not started yet (sequential rounds).
    pub fn waiting(&self) -> Vec<&str> {
        let Some(round) = &self.round else {
            return Vec::new();
        };
        let started = |m: &str| {
            self.entries
                .iter()
                .any(|e| e.round == round.number && e.model == m)
        };
        if self.status == Some(DiscussionStatus::Running)
            || self.entries.iter().any(|e| e.round == round.number)
        {
            round
                .models
                .iter()
                .map(String::as_str)
                .filter(|m| !started(m))
                .collect()
        } else {
            round.models.iter().map(String::as_str).collect()
        }
    }

    /// The models that answered and those that failed (with why), in this run.
    pub fn outcome(&self) -> (Vec<&Entry>, Vec<&Entry>) {
        let answered = self
            .entries
            .iter()
            .filter(|e| matches!(e.phase, Phase::Complete | Phase::Interrupted));
        let failed = self.entries.iter().filter(|e| e.phase == Phase::Failed);
        (answered.collect(), failed.collect())
    }

    /// How the run went in words: `3 models answered`, `1 of 2 models
    /// answered; failed: v/bad`, or over several rounds `4 of 6 answers;
    /// failed: v/bad ×2`. `None` when nothing was asked.
    pub fn tally(&self) -> Option<String> {
        let (answered, failed) = self.outcome();
        let total = answered.len() + failed.len();
        if total == 0 {
            return None;
        }
        let mut rounds: Vec<u32> = self.entries.iter().map(|e| e.round).collect();
        rounds.dedup();
        let several = rounds.len() > 1;
        let noun = |n: usize| match (several, n) {
            (true, 1) => "1 answer".to_string(),
            (true, n) => format!("{n} answers"),
            (false, 1) => "1 model".to_string(),
            (false, n) => format!("{n} models"),
        };
        if failed.is_empty() {
            return Some(if several {
                format!("{} in {} rounds", noun(total), rounds.len())
            } else {
                format!("{} answered", noun(total))
            });
        }
        let mut names: Vec<(&str, usize)> = Vec::new();
        for entry in &failed {
            match names.iter_mut().find(|(m, _)| *m == entry.model) {
                Some((_, n)) => *n += 1,
                None => names.push((&entry.model, 1)),
            }
        }
        let names: Vec<String> = names
            .iter()
            .map(|(m, n)| {
                if *n > 1 {
                    format!("{m} ×{n}")
                } else {
                    (*m).to_string()
                }
            })
            .collect();
        let verb = if several { "" } else { " answered" };
        Some(format!(
            "{} of {}{verb}; failed: {}",
            answered.len(),
            noun(total),
            names.join(", ")
        ))
    }

    /// The summed cost of the messages completed in this run.
    pub fn cost(&self) -> f64 {
        self.entries
            .iter()
            .filter_map(|e| e.message.as_ref()?.usage.as_ref().map(|u| u.cost_usd))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moai_proto::v1::{
        MessageCompleted, MessageDelta, MessageFailed, MessageStarted, RoundStarted,
    };

    fn ev(seq: u64, payload: Payload) -> DiscussionEvent {
        DiscussionEvent {
            discussion_id: "d1".into(),
            seq,
            time: None,
            payload: Some(payload),
        }
    }

    #[test]
    fn folds_a_round_with_one_failure() {
        let mut p = Progress::new();
        p.apply(&ev(
            1,
            Payload::RoundStarted(RoundStarted {
                number: 1,
                mode: RoundMode::Sequential as i32,
                models: vec!["a".into(), "b".into()],
            }),
        ));
        p.apply(&ev(
            2,
            Payload::MessageStarted(MessageStarted {
                message_id: "m1".into(),
                model: "a".into(),
                round: 1,
                role: 2,
            }),
        ));
        assert_eq!(p.waiting(), ["b"]);
        p.apply(&ev(
            3,
            Payload::MessageDelta(MessageDelta {
                message_id: "m1".into(),
                model: "a".into(),
                text: "Hel".into(),
                ..Default::default()
            }),
        ));
        p.apply(&ev(
            4,
            Payload::MessageDelta(MessageDelta {
                message_id: "m1".into(),
                model: "a".into(),
                text: "lo".into(),
                ..Default::default()
            }),
        ));
        assert_eq!(p.entries[0].text, "Hello");
        let message = Message {
            id: "m1".into(),
            model: "a".into(),
            content: "Hello!".into(),
            status: MessageStatus::Complete as i32,
            round: 1,
            ..Default::default()
        };
        p.apply(&ev(
            5,
            Payload::MessageCompleted(MessageCompleted {
                message: Some(message),
            }),
        ));
        p.apply(&ev(
            6,
            Payload::MessageFailed(MessageFailed {
                message_id: "m2".into(),
                model: "b".into(),
                error: "timeout".into(),
                content: String::new(),
                ..Default::default()
            }),
        ));

        let (answered, failed) = p.outcome();
        assert_eq!(answered[0].text, "Hello!");
        assert_eq!(failed[0].model, "b");
        assert_eq!(failed[0].round, 1);
        assert_eq!(p.last_seq, 6);
        assert_eq!(p.discussion_id, "d1");
        assert_eq!(p.streaming().count(), 0);
        assert_eq!(
            p.tally().as_deref(),
            Some("1 of 2 models answered; failed: b")
        );
    }
}
