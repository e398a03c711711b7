//! Discussions that stop at consensus: what the judge is asked after a
//! round, and how its `CONSENSUS: yes|no` verdict is read (leniently; a
//! verdict that cannot be read counts as no, so a run never stops by accident).

use std::sync::LazyLock;

use regex::Regex;

use crate::llm::ChatMessage;

/// `CONSENSUS: yes`, `**Consensus:** No.`, `consensus = YES`: the answer is group 1.
static VERDICT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\bconsensus\b[\s*_]*[:=\-–—][\s*_`]*(yes|no)\b")
        .expect("a constant pattern compiles")
});

/// The judge's verdict in `text`: the last `CONSENSUS:` line counts;
/// `None` when there is none.
pub fn parse_verdict(text: &str) -> Option<bool> {
    VERDICT
        .captures_iter(text)
        .last()
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().eq_ignore_ascii_case("yes"))
}

/// Whether the judge found consensus; an unreadable verdict is a no.
pub fn agreed(text: &str) -> bool {
    parse_verdict(text).unwrap_or(false)
}

/// The judge's request after round `round`: the discussion as rendered for
/// it (`so_far`), and the question of agreement.
pub fn judge_messages(
    question: &str,
    topic: &str,
    participants: &[String],
    so_far: &str,
    round: u32,
) -> Vec<ChatMessage> {
    let system = format!(
        "You are the judge of a roundtable discussion between AI models ({participants}) about \
         {topic}. You do not take part: you only decide whether the participants now agree on \
         the answer to the question.",
        participants = participants.join(", "),
    );
    let user = format!(
        "Question: {question}\n\nThe discussion so far:\n\n{so_far}\
         Round {round} has just ended. Do the participants now agree on the answer to the \
         question? They agree when they would give the same answer in substance, even in \
         different words or with differences in minor details; they do not while any of them \
         still holds a different answer on a point that matters.\n\n\
         Explain your judgement in a few sentences, then end with exactly one line, either\n\
         CONSENSUS: yes\nor\nCONSENSUS: no"
    );
    vec![ChatMessage::system(system), ChatMessage::user(user)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_are_read_leniently() {
        assert_eq!(parse_verdict("They agree.\nCONSENSUS: yes"), Some(true));
        assert_eq!(parse_verdict("CONSENSUS: no"), Some(false));
        assert_eq!(parse_verdict("**Consensus:** Yes."), Some(true));
        assert_eq!(parse_verdict("consensus = NO"), Some(false));
        assert_eq!(parse_verdict("CONSENSUS - `yes`"), Some(true));
    }

    #[test]
    fn the_last_verdict_counts() {
        let text = "At first sight CONSENSUS: yes, but b/two dissents.\nCONSENSUS: no";
        assert_eq!(parse_verdict(text), Some(false));
    }

    #[test]
    fn no_verdict_counts_as_no() {
        assert_eq!(parse_verdict("They mostly agree."), None);
        assert_eq!(parse_verdict("consensus: maybe"), None);
        assert!(!agreed("There is a broad consensus yes"));
        assert!(agreed("CONSENSUS: yes"));
    }

    #[test]
    fn the_judge_is_asked_for_the_verdict_line() {
        let msgs = judge_messages(
            "Tabs?",
            "Style",
            &["a/one".into(), "b/two".into()],
            "[a/one]\ntabs\n\n",
            2,
        );
        assert!(msgs[0].content.contains("a/one, b/two"));
        assert!(msgs[1].content.contains("Question: Tabs?"));
        assert!(msgs[1].content.contains("[a/one]\ntabs"));
        assert!(msgs[1].content.contains("Round 2 has just ended"));
        assert!(
            msgs[1]
                .content
                .ends_with("CONSENSUS: yes\nor\nCONSENSUS: no")
        );
    }
}
