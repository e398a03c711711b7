//! `--json`: one proto3-JSON `DiscussionEvent` per line (NDJSON).

use std::io::Write;

use moai_proto::json::ToJson;
use moai_proto::v1::DiscussionEvent;

use super::Renderer;
use super::progress::Progress;

/// Writes every event as one line of JSON.
pub struct Json<W: Write> {
    out: W,
}

impl<W: Write> Json<W> {
    /// NDJSON to `out`.
    pub fn new(out: W) -> Self {
        Json { out }
    }
}

/// One message as a line of proto3 JSON.
///
/// # Errors
/// When the message cannot be rendered (a descriptor mismatch: a bug).
pub fn line<M: ToJson>(message: &M) -> std::io::Result<String> {
    message.to_json().map_err(std::io::Error::other)
}

impl<W: Write> Renderer for Json<W> {
    fn event(
        &mut self,
        event: &DiscussionEvent,
        _progress: &Progress,
        _touched: Option<usize>,
    ) -> std::io::Result<()> {
        writeln!(self.out, "{}", line(event)?)?;
        self.out.flush()
    }

    fn finish(&mut self, _progress: &Progress) -> std::io::Result<()> {
        self.out.flush()
    }

    fn detach(&mut self, _progress: &Progress) -> std::io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moai_proto::v1::discussion_event::Payload;
    use moai_proto::v1::{MessageDelta, RoundCompleted};

    #[test]
    fn every_event_is_one_json_line() {
        let mut out = Vec::new();
        {
            let mut json = Json::new(&mut out);
            let progress = Progress::new();
            for (seq, payload) in [
                (
                    1,
                    Payload::MessageDelta(MessageDelta {
                        message_id: "m".into(),
                        model: "a".into(),
                        text: "x\ny".into(),
                        ..Default::default()
                    }),
                ),
                (2, Payload::RoundCompleted(RoundCompleted { number: 1 })),
            ] {
                let event = DiscussionEvent {
                    discussion_id: "d".into(),
                    seq,
                    time: None,
                    payload: Some(payload),
                };
                json.event(&event, &progress, None).expect("writes");
            }
        }
        let text = String::from_utf8(out).expect("utf-8");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["messageDelta"]["text"], "x\ny");
        assert_eq!(lines[1]["roundCompleted"]["number"], 1);
        assert_eq!(lines[1]["discussionId"], "d");
    }
}
