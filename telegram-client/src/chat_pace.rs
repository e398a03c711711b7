//! Pacing of what the live answers send into one chat. Telegram allows a
//! bot about 20 messages a minute in a group, shared by every answer
//! streaming there at once, and a `RetryAfter` for one of them holds for the
//! whole chat. So the answers of a chat share one [`ChatPace`]: a message's
//! first part and its final text wait for their turn (first come, first
//! served), while an edit of a streaming answer is made only when a turn is
//! free right now and is otherwise skipped (the next one carries its text).

use std::{
    sync::{Mutex, PoisonError},
    time::Duration,
};

use tokio::time::Instant;

/// Share of a group's message budget the live answers may use: the rest is
/// left for replies and notices.
const LIVE_SHARE: f64 = 0.8;

#[derive(Debug, Default)]
struct Turns {
    /// The earliest moment the next turn may start.
    next: Option<Instant>,
    /// No call before this (Telegram asked the chat to wait).
    blocked_until: Option<Instant>,
}

/// The turns of one chat's live answers.
#[derive(Debug)]
pub struct ChatPace {
    gap: Duration,
    turns: Mutex<Turns>,
}

impl ChatPace {
    /// No spacing between calls (a private chat), only `RetryAfter` shared.
    #[must_use]
    pub fn unlimited() -> Self {
        Self::with_gap(Duration::ZERO)
    }

    /// Spacing for a group allowing `messages_per_minute` (0 counts as 1), of
    /// which the live answers use four fifths.
    #[must_use]
    pub fn for_group(messages_per_minute: u32) -> Self {
        let per_minute = f64::from(messages_per_minute.max(1)) * LIVE_SHARE;
        Self::with_gap(Duration::from_secs_f64(60.0 / per_minute))
    }

    /// At least `gap` between two turns.
    #[must_use]
    pub fn with_gap(gap: Duration) -> Self {
        ChatPace {
            gap,
            turns: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Turns> {
        self.turns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a turn, after the turns already promised.
    pub async fn wait_turn(&self) {
        loop {
            let at = {
                let mut turns = self.lock();
                let now = Instant::now();
                let at = [turns.next, turns.blocked_until]
                    .into_iter()
                    .flatten()
                    .fold(now, Instant::max);
                turns.next = Some(at + self.gap);
                at
            };
            tokio::time::sleep_until(at).await;
            // Telegram may have asked the chat to wait meanwhile.
            if self.lock().blocked_until.is_none_or(|until| until <= at) {
                return;
            }
        }
    }

    /// Takes a turn if one is free now; `false` if the call should be skipped.
    #[must_use]
    pub fn try_turn(&self) -> bool {
        let mut turns = self.lock();
        let now = Instant::now();
        let free = [turns.next, turns.blocked_until]
            .into_iter()
            .flatten()
            .all(|at| at <= now);
        if free {
            turns.next = Some(now + self.gap);
        }
        free
    }

    /// Telegram asked to wait `wait` before calling into this chat again.
    pub fn retry_after(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut turns = self.lock();
        turns.blocked_until = Some(turns.blocked_until.map_or(until, |at| at.max(until)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn turns_are_spaced_and_served_in_order() {
        let pace = ChatPace::with_gap(Duration::from_secs(3));
        let start = Instant::now();
        pace.wait_turn().await;
        assert_eq!(start.elapsed(), Duration::ZERO, "the first turn is free");
        pace.wait_turn().await;
        pace.wait_turn().await;
        assert_eq!(start.elapsed(), Duration::from_secs(6));
    }

    #[tokio::test(start_paused = true)]
    async fn a_streaming_edit_is_skipped_while_turns_are_promised() {
        let pace = ChatPace::with_gap(Duration::from_secs(3));
        assert!(pace.try_turn());
        assert!(!pace.try_turn(), "no free turn right after one");
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(pace.try_turn(), "free again after the gap");
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_holds_every_caller_of_the_chat() {
        let pace = ChatPace::unlimited();
        let start = Instant::now();
        pace.retry_after(Duration::from_secs(5));
        assert!(!pace.try_turn());
        pace.wait_turn().await;
        assert_eq!(start.elapsed(), Duration::from_secs(5));
        assert!(pace.try_turn(), "no spacing in a private chat");
    }

    #[test]
    fn a_group_keeps_a_fifth_of_its_budget_for_replies() {
        let pace = ChatPace::for_group(20);
        assert_eq!(pace.gap, Duration::from_millis(3750));
    }
}
