//! What each model is sent: the roundtable system prompt and the discussion
//! so far as a labelled transcript, trimmed oldest-round-first to the model's
//! context budget (the question and the latest round are always kept).

use crate::domain::{MessageRole, MessageStatus, RoundMode};
use crate::llm::{ChatMessage, ChatRole};
use crate::store::{ProjectRecord, RoundRecord};

/// Speaker label of the user's own messages.
pub const USER_LABEL: &str = "user";

/// One thing said in the discussion.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub speaker: String,
    /// For a user message: the model it was addressed to.
    pub addressee: Option<String>,
    pub content: String,
}

/// One round as the models see it.
#[derive(Clone, Debug, PartialEq)]
pub struct TranscriptRound {
    pub number: u32,
    pub mode: RoundMode,
    pub entries: Vec<Entry>,
}

/// The question and everything said since, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Transcript {
    pub question: String,
    pub rounds: Vec<TranscriptRound>,
}

impl Transcript {
    /// Builds the transcript from stored rounds; failed answers and empty
    /// texts are left out, interrupted ones keep what was said.
    pub fn from_rounds(question: &str, rounds: &[RoundRecord]) -> Self {
        let mut t = Self {
            question: question.to_owned(),
            rounds: Vec::new(),
        };
        for r in rounds {
            t.begin_round(r.number, r.mode);
            for m in &r.messages {
                if m.status == MessageStatus::Failed || m.content.trim().is_empty() {
                    continue;
                }
                match m.role {
                    MessageRole::User => t.push_user(&m.model, &m.content),
                    MessageRole::Model | MessageRole::Summary => t.push(&m.model, &m.content),
                }
            }
        }
        t
    }

    /// Starts a new round.
    pub fn begin_round(&mut self, number: u32, mode: RoundMode) {
        self.rounds.push(TranscriptRound {
            number,
            mode,
            entries: Vec::new(),
        });
    }

    /// Adds a model's message to the latest round.
    pub fn push(&mut self, speaker: &str, content: &str) {
        self.push_entry(Entry {
            speaker: speaker.to_owned(),
            addressee: None,
            content: content.to_owned(),
        });
    }

    /// Adds the user's message to `addressee` to the latest round.
    pub fn push_user(&mut self, addressee: &str, content: &str) {
        self.push_entry(Entry {
            speaker: USER_LABEL.to_owned(),
            addressee: (!addressee.is_empty()).then(|| addressee.to_owned()),
            content: content.to_owned(),
        });
    }

    fn push_entry(&mut self, entry: Entry) {
        if let Some(round) = self.rounds.last_mut() {
            round.entries.push(entry);
        }
    }

    /// Renders the rounds that fit `budget_tokens`, dropping the oldest first
    /// but never the latest round that has entries.
    fn render(&self, me: &str, budget_tokens: usize, reserve_tokens: usize) -> String {
        let rounds: Vec<&TranscriptRound> = self
            .rounds
            .iter()
            .filter(|r| !r.entries.is_empty())
            .collect();
        let mut skip = 0;
        loop {
            let text = render_rounds(&rounds[skip..], me, skip > 0);
            let fits = estimate_tokens(&text) + estimate_tokens(&self.question) + reserve_tokens
                <= budget_tokens;
            if fits || skip + 1 >= rounds.len() {
                return text;
            }
            skip += 1;
        }
    }
}

fn render_rounds(rounds: &[&TranscriptRound], me: &str, omitted: bool) -> String {
    let mut out = String::new();
    if omitted {
        out.push_str(
            "(Earlier turns of this discussion were omitted to fit your context window.)\n\n",
        );
    }
    for r in rounds {
        let how = match r.mode {
            RoundMode::Parallel => "everyone answered independently",
            RoundMode::Sequential => "in turns",
            RoundMode::Mention => "the user addressed one participant",
            RoundMode::Summary => "consensus summary",
        };
        out.push_str(&format!("=== Round {} ({how}) ===\n\n", r.number));
        for e in &r.entries {
            let label = match (&e.addressee, e.speaker == me) {
                (Some(to), _) => format!("[{} → @{to}]", e.speaker),
                (None, true) => format!("[{} (you)]", e.speaker),
                (None, false) => format!("[{}]", e.speaker),
            };
            out.push_str(&label);
            out.push('\n');
            out.push_str(e.content.trim());
            out.push_str("\n\n");
        }
    }
    out
}

/// A rough token count (about four characters a token), enough for budgeting.
pub fn estimate_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4)
}

/// Tokens kept free for the system prompt, instructions and the answer.
const RESERVE_TOKENS: usize = 1_500;

/// The roundtable system prompt: who the model is, who else is at the table,
/// the topic, and the project's own instructions.
pub fn system_prompt(project: &ProjectRecord, me: &str) -> String {
    let others: Vec<&str> = project
        .models
        .iter()
        .map(String::as_str)
        .filter(|m| *m != me)
        .collect();
    let others = if others.is_empty() {
        "none (you are the only model at the table)".to_owned()
    } else {
        others.join(", ")
    };
    let mut prompt = format!(
        "You are {me}, one participant in a roundtable discussion between AI models.\n\
         Topic: {topic}\n\
         Other participants: {others}\n\
         A human user moderates and asks the questions. Give your own view clearly and concisely; \
         when others have spoken, engage with them by name: agree, disagree with reasons, or add \
         what they missed. Do not pretend to be another participant. Write in Markdown.",
        topic = project.name,
    );
    if !project.system_prompt.trim().is_empty() {
        prompt.push_str("\n\nInstructions for this roundtable:\n");
        prompt.push_str(project.system_prompt.trim());
    }
    prompt
}

fn chat(system: String, user: String) -> Vec<ChatMessage> {
    vec![
        ChatMessage {
            role: ChatRole::System,
            content: system,
        },
        ChatMessage {
            role: ChatRole::User,
            content: user,
        },
    ]
}

/// An open round: the question alone (or with the discussion so far, when an
/// open round follows earlier ones).
pub fn open_messages(
    project: &ProjectRecord,
    me: &str,
    transcript: &Transcript,
    budget: usize,
) -> Vec<ChatMessage> {
    let so_far = transcript.render(me, budget, RESERVE_TOKENS);
    let user = if so_far.is_empty() {
        transcript.question.clone()
    } else {
        format!(
            "Question: {}\n\nThe discussion so far:\n\n{so_far}Answer the question with your own view.",
            transcript.question
        )
    };
    chat(system_prompt(project, me), user)
}

/// A turn in a sequential round: everything said before, then the model's cue.
pub fn turn_messages(
    project: &ProjectRecord,
    me: &str,
    transcript: &Transcript,
    round: u32,
    budget: usize,
) -> Vec<ChatMessage> {
    let so_far = transcript.render(me, budget, RESERVE_TOKENS);
    let user = if so_far.is_empty() {
        format!(
            "Question: {}\n\nYou speak first in round {round}. Give your view.",
            transcript.question
        )
    } else {
        format!(
            "Question: {}\n\nThe discussion so far:\n\n{so_far}It is your turn in round {round}. \
             Respond to what the others said: build on it, challenge it, or refine your own view. \
             Do not repeat yourself.",
            transcript.question
        )
    };
    chat(system_prompt(project, me), user)
}

/// A mention: the user speaks to this model directly, with the discussion as context.
pub fn mention_messages(
    project: &ProjectRecord,
    me: &str,
    transcript: &Transcript,
    text: &str,
    budget: usize,
) -> Vec<ChatMessage> {
    let so_far = transcript.render(me, budget, RESERVE_TOKENS + estimate_tokens(text));
    let user = format!(
        "Question: {}\n\nThe discussion so far:\n\n{so_far}The user now addresses you directly:\n\n{text}",
        transcript.question
    );
    chat(system_prompt(project, me), user)
}

/// The consensus summary: one model reads it all and reports.
pub fn summary_messages(
    project: &ProjectRecord,
    me: &str,
    transcript: &Transcript,
    budget: usize,
) -> Vec<ChatMessage> {
    let so_far = transcript.render(me, budget, RESERVE_TOKENS);
    let participants = project.models.join(", ");
    let system = format!(
        "You are {me}, the moderator of a roundtable discussion between AI models \
         ({participants}) about {topic}. You summarize fairly, attributing views to the \
         participants by name, without taking sides unless the evidence is clear. Write in Markdown.",
        topic = project.name
    );
    let user = format!(
        "Question: {}\n\nThe discussion:\n\n{so_far}Write the consensus summary with these sections:\n\
         ## Agreements\nwhere the participants agree.\n\
         ## Disagreements\nwhere they disagree, who holds which view, and why.\n\
         ## Open questions\nwhat remains unresolved.\n\
         ## Recommended answer\nthe best answer to the question in light of the discussion.",
        transcript.question
    );
    chat(system, user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project() -> ProjectRecord {
        ProjectRecord {
            id: "p".into(),
            owner: "o".into(),
            name: "Rust async".into(),
            models: vec!["a/one".into(), "b/two".into()],
            system_prompt: "Be brief.".into(),
            summarizer_model: String::new(),
            fallbacks: Default::default(),
            create_time: 0,
            update_time: 0,
        }
    }

    #[test]
    fn system_prompt_names_topic_and_others() {
        let p = system_prompt(&project(), "a/one");
        assert!(p.contains("You are a/one"));
        assert!(p.contains("Rust async"));
        assert!(p.contains("Other participants: b/two"));
        assert!(p.contains("Be brief."));
    }

    #[test]
    fn turn_labels_speakers() {
        let mut t = Transcript {
            question: "Q?".into(),
            rounds: vec![],
        };
        t.begin_round(1, RoundMode::Sequential);
        t.push("a/one", "first");
        t.push("b/two", "second");
        let msgs = turn_messages(&project(), "a/one", &t, 2, 10_000);
        let user = &msgs[1].content;
        assert!(user.contains("[a/one (you)]\nfirst"));
        assert!(user.contains("[b/two]\nsecond"));
        assert!(user.contains("Question: Q?"));
    }

    #[test]
    fn trimming_drops_oldest_round_keeps_question_and_latest() {
        let mut t = Transcript {
            question: "The question".into(),
            rounds: vec![],
        };
        for n in 1..=3 {
            t.begin_round(n, RoundMode::Sequential);
            t.push("a/one", &format!("round{n} {}", "x".repeat(2_000)));
        }
        let msgs = turn_messages(&project(), "b/two", &t, 4, RESERVE_TOKENS + 1_200);
        let user = &msgs[1].content;
        assert!(user.contains("The question"));
        assert!(!user.contains("round1 "));
        assert!(user.contains("round3 "));
        assert!(user.contains("omitted"));
    }
}
