//! The demo voices of `moai-fake-llm --demo`: each model speaks as its own
//! character and answers what it was asked, so that an offline demo shows
//! what moai is for: models hearing each other.
//!
//! It reads the request the way moai's prompts are written (the question
//! after `Question: `, the transcript's `[speaker]` blocks, the user's words
//! after "addresses you directly", the moderator's system prompt for a
//! summary); any other request gets an answer to its last user message.

use super::{RecordedMessage, RecordedRequest};

/// One character at the table.
struct Voice {
    /// How it describes itself.
    role: &'static str,
    /// Its answer to a question nobody has discussed yet.
    open: fn(&str) -> String,
    /// Its reply to `speaker`, who said `quote`, about `question`.
    reply: fn(question: &str, speaker: &str, quote: &str) -> String,
}

const VOICES: [Voice; 3] = [
    Voice {
        role: "the pragmatist",
        open: |q| {
            format!(
                "On **{q}** I'll be practical: pick the option your tools can apply for you, \
                 write it down once, and stop spending meetings on it.\n\n\
                 - Agree on one rule per project.\n\
                 - Let the formatter enforce it on save.\n\
                 - Revisit it only when it costs real time."
            )
        },
        reply: |q, who, said| {
            format!(
                "I'll build on what **{who}** said: \"{said}\" Fair, but on **{q}** the deciding \
                 factor is still cost. Whatever the team can keep doing without thinking wins; \
                 the rest is taste."
            )
        },
    },
    Voice {
        role: "the skeptic",
        open: |q| {
            format!(
                "Before answering **{q}**, I'd question the premise. Most of the arguments on \
                 either side are habits dressed up as principles.\n\n\
                 1. Ask what problem the choice actually solves.\n\
                 2. Measure it, if it can be measured.\n\
                 3. Distrust anyone who is certain."
            )
        },
        reply: |q, who, said| {
            format!(
                "I'm not convinced by **{who}** here: \"{said}\" That sounds tidy, but it skips \
                 the hard part of **{q}**: who pays when the rule is wrong? I'd want one real \
                 example before agreeing."
            )
        },
    },
    Voice {
        role: "the synthesizer",
        open: |q| {
            format!(
                "Let me map **{q}** first. There are two honest positions: consistency matters \
                 more than the choice, and some choices do serve people better.\n\n\
                 > The best answer is the one the whole table can live with."
            )
        },
        reply: |q, who, said| {
            format!(
                "Pulling this together: **{who}** said \"{said}\" and I think both sides of \
                 **{q}** can meet there. Agree on the goal first, then let the tools settle the \
                 details."
            )
        },
    },
];

/// The demo answer to `request`.
pub(super) fn answer(request: &RecordedRequest) -> String {
    let voice = voice_of(&request.model);
    let me = short_name(&request.model);
    let user = last(&request.messages, "user");
    let system = last(&request.messages, "system");
    let question = question_of(user);
    if system.contains("moderator of a roundtable") {
        return summary(me, &question, &speakers(user, &request.model));
    }
    if let Some(said) = user.split("addresses you directly:").nth(1) {
        let said = quote(said, "");
        return format!(
            "You asked me, {me}, {role}: \"{said}\" Here is my honest view on **{question}**: \
             I'd keep it simple, and I'd say so to the others too.",
            role = voice.role
        );
    }
    match last_other_speaker(user) {
        Some((who, said)) => (voice.reply)(&question, short_name(&who), &quote(&said, &question)),
        None => (voice.open)(&question),
    }
}

/// The voice of `model`: alpha, beta and gamma by name, anything else by a
/// stable hash of its id.
fn voice_of(model: &str) -> &'static Voice {
    let name = short_name(model);
    let index = match name {
        "alpha" => 0,
        "beta" => 1,
        "gamma" => 2,
        _ => model.bytes().map(usize::from).sum::<usize>() % VOICES.len(),
    };
    &VOICES[index]
}

/// `alpha` for `demo/alpha`.
fn short_name(model: &str) -> &str {
    model.rsplit('/').next().unwrap_or(model)
}

fn last<'a>(messages: &'a [RecordedMessage], role: &str) -> &'a str {
    messages
        .iter()
        .rev()
        .find(|m| m.role == role)
        .map_or("", |m| m.content.as_str())
}

/// The question: the line after `Question: `, else the whole message.
fn question_of(user: &str) -> String {
    let question = user
        .strip_prefix("Question: ")
        .and_then(|rest| rest.split("\n\n").next())
        .unwrap_or(user);
    clip(question.trim(), 80)
}

/// Every `[speaker]` of the transcript, in order of first appearance,
/// without the user's own entries and without the asker.
fn speakers(user: &str, me: &str) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for (who, _) in entries(user) {
        if who != me && !seen.contains(&who) {
            seen.push(who);
        }
    }
    seen
}

/// The transcript's entries: `[label]` lines and the text under each.
fn entries(user: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for block in user.split("\n\n") {
        let mut lines = block.lines();
        let Some(first) = lines.next() else { continue };
        let label = first
            .strip_prefix('[')
            .and_then(|l| l.strip_suffix(']'))
            .filter(|l| !l.contains('→') && !l.ends_with("(you)"));
        match label {
            Some(who) => out.push((who.to_string(), lines.collect::<Vec<_>>().join(" "))),
            None if first.starts_with("===") || first.starts_with('[') => {
                out.push((String::new(), String::new()));
            }
            // A paragraph of the entry above.
            None => {
                if let Some((_, text)) = out.last_mut() {
                    text.push(' ');
                    text.push_str(block);
                }
            }
        }
    }
    out.retain(|(who, _)| !who.is_empty());
    out
}

/// Who spoke last before this model, and what they said.
fn last_other_speaker(user: &str) -> Option<(String, String)> {
    entries(user)
        .into_iter()
        .rev()
        .find(|(_, said)| !said.trim().is_empty())
}

/// The sentence of `text` worth quoting, without Markdown marks: the first
/// of four words or more that neither restates `question` nor quotes someone
/// else; at most 90 chars.
fn quote(text: &str, question: &str) -> String {
    let plain: String = text
        .chars()
        .filter(|c| !matches!(c, '*' | '_' | '`' | '#' | '>'))
        .collect();
    let plain = plain.split_whitespace().collect::<Vec<_>>().join(" ");
    // The question's own `?` must not end a sentence.
    let marked = if question.is_empty() {
        plain.clone()
    } else {
        plain.replace(question, "\u{1}")
    };
    let sentences: Vec<&str> = marked
        .split_inclusive(['.', '?', '!'])
        .map(str::trim)
        .collect();
    let claim = sentences
        .iter()
        .find(|s| !s.contains(['\u{1}', '"']) && s.split_whitespace().count() >= 4)
        .or_else(|| sentences.first())
        .map_or(plain.as_str(), |s| s);
    clip(&claim.replace('\u{1}', question), 90)
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max).collect();
    format!("{}…", cut.trim_end())
}

fn summary(me: &str, question: &str, speakers: &[String]) -> String {
    let names: Vec<&str> = speakers.iter().map(|s| short_name(s)).collect();
    let all = if names.is_empty() {
        "everyone".to_string()
    } else {
        names.join(", ")
    };
    let first = names.first().copied().unwrap_or("one side");
    let second = names.get(1).copied().unwrap_or("the other");
    format!(
        "*Summary by {me}.*\n\n\
         ## Agreements\n- {all} want one consistent answer to **{question}**, applied by tools.\n\n\
         ## Disagreements\n- {first} weighs the cost of the choice; {second} doubts the premise.\n\n\
         ## Open questions\n- Which real example would settle it?\n\n\
         ## Recommended answer\nAgree on one rule, automate it, and revisit it only with evidence."
    )
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    fn request(model: &str, system: &str, user: &str) -> RecordedRequest {
        RecordedRequest {
            model: model.into(),
            messages: vec![
                RecordedMessage {
                    role: "system".into(),
                    content: system.into(),
                },
                RecordedMessage {
                    role: "user".into(),
                    content: user.into(),
                },
            ],
            stream: true,
            include_usage: false,
            max_tokens: None,
            api_key: None,
            received_at: Instant::now(),
        }
    }

    #[test]
    fn each_model_answers_the_question_in_its_own_words() {
        let answers: Vec<String> = ["demo/alpha", "demo/beta", "demo/gamma"]
            .iter()
            .map(|m| answer(&request(m, "You are x", "Tabs or spaces?")))
            .collect();
        for a in &answers {
            assert!(a.contains("Tabs or spaces?"), "{a}");
        }
        assert_ne!(answers[0], answers[1]);
        assert_ne!(answers[1], answers[2]);
    }

    #[test]
    fn a_turn_quotes_the_last_other_speaker() {
        let user = "Question: Tabs or spaces?\n\nThe discussion so far:\n\n\
                    === Round 1 (in turns) ===\n\n[demo/alpha]\nSpaces, for sure. Use spaces always, everywhere. Tabs or spaces? Spaces.\n\n\
                    [demo/beta (you)]\nMaybe.\n\nIt is your turn in round 1.";
        let a = answer(&request("demo/gamma", "You are demo/gamma", user));
        assert!(
            a.contains("**alpha**") && a.contains("\"Use spaces always, everywhere.\""),
            "{a}"
        );
        assert!(a.contains("Tabs or spaces?"), "{a}");
    }

    #[test]
    fn a_mention_answers_the_user_and_a_summary_names_the_speakers() {
        let user = "Question: Q?\n\nThe discussion so far:\n\n=== Round 1 (in turns) ===\n\n\
                    [demo/alpha]\nA.\n\n[demo/beta]\nB.\n\n\
                    The user now addresses you directly:\n\nWhy so sure?";
        let a = answer(&request("demo/beta", "You are demo/beta", user));
        assert!(a.contains("\"Why so sure?\""), "{a}");
        let s = answer(&request(
            "demo/gamma",
            "You are demo/gamma, the moderator of a roundtable discussion",
            user,
        ));
        assert!(
            s.contains("## Agreements") && s.contains("alpha, beta"),
            "{s}"
        );
    }
}
