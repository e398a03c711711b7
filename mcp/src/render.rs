//! A stored discussion as Markdown an assistant reads well: each answer
//! under its model's name, the consensus last.

use moai_proto::v1::{self, MessageRole, MessageStatus, RoundMode};

/// The discussion as Markdown, headed by its id and project.
pub fn discussion_text(d: &v1::Discussion, project: &str) -> String {
    let mut out = format!(
        "Discussion {} (project {project}): {}\n",
        d.id,
        d.question.trim()
    );
    for round in &d.rounds {
        let summary = round.mode == RoundMode::Summary as i32;
        if summary {
            out.push_str("\n## Consensus\n");
        } else {
            out.push_str(&format!("\n## Round {}\n", round.number));
        }
        for m in &round.messages {
            let who = if m.role == MessageRole::User as i32 {
                format!("You to {}", m.model)
            } else {
                m.model.clone()
            };
            out.push_str(&format!("\n### {who}\n\n"));
            if m.status == MessageStatus::Failed as i32 {
                out.push_str(&format!("_(failed: {})_\n", m.error));
            } else {
                out.push_str(m.content.trim());
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_labelled_and_the_consensus_comes_last() {
        let msg = |model: &str, content: &str, status: MessageStatus| v1::Message {
            model: model.into(),
            content: content.into(),
            status: status as i32,
            role: MessageRole::Model as i32,
            error: if status == MessageStatus::Failed {
                "timed out".into()
            } else {
                String::new()
            },
            ..Default::default()
        };
        let d = v1::Discussion {
            id: "d1".into(),
            question: "why?".into(),
            rounds: vec![
                v1::Round {
                    number: 1,
                    mode: RoundMode::Parallel as i32,
                    messages: vec![
                        msg("a/x", "because", MessageStatus::Complete),
                        msg("b/y", "", MessageStatus::Failed),
                    ],
                },
                v1::Round {
                    number: 2,
                    mode: RoundMode::Summary as i32,
                    messages: vec![msg("a/x", "agreed", MessageStatus::Complete)],
                },
            ],
            ..Default::default()
        };
        let text = discussion_text(&d, "p");
        assert!(text.starts_with("Discussion d1 (project p): why?\n"));
        let a = text.find("### a/x\n\nbecause").expect("a's answer");
        let b = text
            .find("### b/y\n\n_(failed: timed out)_")
            .expect("b's failure");
        let c = text
            .find("## Consensus\n\n### a/x\n\nagreed")
            .expect("consensus");
        assert!(a < b && b < c);
    }
}
