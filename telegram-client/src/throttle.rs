//! Pacing of the edits of one live message: at most one per interval, and
//! none before a `RetryAfter` from Telegram has run out.

use std::time::Duration;

use tokio::time::Instant;

/// When the next edit of one message may be made.
#[derive(Debug, Clone)]
pub struct EditThrottle {
    interval: Duration,
    next: Option<Instant>,
}

impl EditThrottle {
    /// At most one edit per `interval`.
    #[must_use]
    pub fn new(interval: Duration) -> Self {
        EditThrottle {
            interval,
            next: None,
        }
    }

    /// The earliest moment the next edit may be made (`None`: right away).
    #[must_use]
    pub fn ready_at(&self) -> Option<Instant> {
        self.next.filter(|next| *next > Instant::now())
    }

    /// Waits until the next edit may be made.
    pub async fn ready(&self) {
        if let Some(at) = self.ready_at() {
            tokio::time::sleep_until(at).await;
        }
    }

    /// Records an edit made now.
    pub fn record(&mut self) {
        self.next = Some(Instant::now() + self.interval);
    }

    /// Telegram asked to wait `wait` before calling again.
    pub fn retry_after(&mut self, wait: Duration) {
        let until = Instant::now() + wait;
        self.next = Some(self.next.map_or(until, |next| next.max(until)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_first_edit_is_immediate_and_the_next_waits_the_interval() {
        let mut throttle = EditThrottle::new(Duration::from_secs(1));
        assert!(throttle.ready_at().is_none());
        throttle.record();
        let start = Instant::now();
        throttle.ready().await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        assert!(throttle.ready_at().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_extends_but_never_shortens_the_wait() {
        let mut throttle = EditThrottle::new(Duration::from_secs(1));
        throttle.record();
        throttle.retry_after(Duration::from_secs(5));
        throttle.retry_after(Duration::from_secs(2));
        let start = Instant::now();
        throttle.ready().await;
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn edits_are_bounded_by_the_interval() {
        let mut throttle = EditThrottle::new(Duration::from_secs(1));
        let start = Instant::now();
        let mut edits = 0;
        while start.elapsed() < Duration::from_secs(10) {
            throttle.ready().await;
            throttle.record();
            edits += 1;
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        assert!(edits <= 11, "{edits} edits in 10 s");
    }
}
