//! The live view drawn into a buffer of a fixed size.

use super::*;
use moai_proto::v1::{Message, MessageCompleted, MessageDelta, MessageStarted, MessageStatus};

fn ev(seq: u64, payload: Payload) -> DiscussionEvent {
    DiscussionEvent {
        discussion_id: "d1".into(),
        seq,
        time: None,
        payload: Some(payload),
    }
}

#[test]
fn the_region_never_outgrows_a_small_terminal() {
    let mut out = Vec::new();
    let mut live = Live::new(&mut out, Theme::new(false), Some((6, 40)));
    let mut progress = Progress::new();
    for i in 0..10 {
        let id = format!("m{i}");
        let event = ev(
            i + 1,
            Payload::MessageStarted(MessageStarted {
                message_id: id,
                model: format!("v/{i}"),
                round: 1,
                role: 2,
            }),
        );
        progress.apply(&event);
    }
    let region = live.region(&progress);
    assert_eq!(region.lines().count(), 5, "{region}");
    assert!(region.ends_with("… 6 more lines\n"), "{region}");
}

#[test]
fn draws_streaming_text_then_the_finished_section() {
    let mut out = Vec::new();
    {
        let mut live = Live::new(&mut out, Theme::new(false), Some((24, 60)));
        let mut progress = Progress::new();
        let events = [
            ev(
                1,
                Payload::MessageStarted(MessageStarted {
                    message_id: "m".into(),
                    model: "a/x".into(),
                    round: 1,
                    role: 2,
                }),
            ),
            ev(
                2,
                Payload::MessageDelta(MessageDelta {
                    message_id: "m".into(),
                    model: "a/x".into(),
                    text: "partial".into(),
                    ..Default::default()
                }),
            ),
            ev(
                3,
                Payload::MessageCompleted(MessageCompleted {
                    message: Some(Message {
                        id: "m".into(),
                        model: "a/x".into(),
                        content: "# Done".into(),
                        status: MessageStatus::Complete as i32,
                        round: 1,
                        latency_ms: 1200,
                        ..Default::default()
                    }),
                }),
            ),
        ];
        for event in &events {
            let touched = progress.apply(event);
            live.event(event, &progress, touched).expect("draws");
            live.tick(&progress).expect("ticks");
        }
        live.finish(&progress).expect("finishes");
    }
    let text = String::from_utf8(out).expect("utf-8");
    assert!(text.contains("partial"), "{text}");
    assert!(text.contains("▌ a/x · round 1"));
    assert!(text.contains("# Done"));
    assert!(text.contains("✓ 1.2s"));
    assert!(text.contains("✓ 1 model answered"));
    assert!(text.contains(SHOW_CURSOR));
}

#[test]
fn thinking_shows_a_running_count_and_the_reasoning_only_when_asked() {
    let events = [
        ev(
            1,
            Payload::MessageStarted(MessageStarted {
                message_id: "m".into(),
                model: "a/x".into(),
                round: 1,
                role: 2,
            }),
        ),
        ev(
            2,
            Payload::MessageDelta(MessageDelta {
                message_id: "m".into(),
                model: "a/x".into(),
                reasoning: "Let me weigh both sides".into(),
                ..Default::default()
            }),
        ),
        ev(
            3,
            Payload::MessageCompleted(MessageCompleted {
                message: Some(Message {
                    id: "m".into(),
                    model: "a/x".into(),
                    content: "The answer.".into(),
                    reasoning: "Let me weigh both sides".into(),
                    status: MessageStatus::Complete as i32,
                    round: 1,
                    ..Default::default()
                }),
            }),
        ),
    ];
    for show in [false, true] {
        let mut out = Vec::new();
        let region;
        {
            let mut live =
                Live::new(&mut out, Theme::new(false), Some((24, 60))).show_reasoning(show);
            let mut progress = Progress::new();
            progress.apply(&events[0]);
            progress.apply(&events[1]);
            region = live.region(&progress);
            let touched = progress.apply(&events[2]);
            live.event(&events[2], &progress, touched).expect("draws");
        }
        assert!(region.contains("thinking… 5 words"), "{region}");
        assert!(
            !region.contains("weigh"),
            "the reasoning is not in the answer: {region}"
        );
        let printed = String::from_utf8_lossy(&out);
        assert!(printed.contains("The answer."), "{printed}");
        assert_eq!(
            printed.contains("💭 Let me weigh both sides"),
            show,
            "{printed}"
        );
    }
}
