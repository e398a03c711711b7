//! Rendering: the event stream of a run (live on a terminal, plain when piped,
//! NDJSON with `--json`), Markdown, messages and tables.

use moai_proto::v1::DiscussionEvent;

pub mod council;
pub mod format;
pub mod json;
pub mod live;
pub mod markdown;
pub mod message;
pub mod plain;
pub mod progress;
pub mod style;
pub mod table;
pub mod text;

use progress::Progress;

/// Shows a run's events as they arrive. `progress` already holds the event;
/// `touched` is the index of the entry it changed.
pub trait Renderer {
    /// One event.
    ///
    /// # Errors
    /// When the output cannot be written (a closed pipe).
    fn event(
        &mut self,
        event: &DiscussionEvent,
        progress: &Progress,
        touched: Option<usize>,
    ) -> std::io::Result<()>;

    /// A clock tick while waiting (the live view animates).
    ///
    /// # Errors
    /// When the output cannot be written.
    fn tick(&mut self, _progress: &Progress) -> std::io::Result<()> {
        Ok(())
    }

    /// The stream ended: say how the run went.
    ///
    /// # Errors
    /// When the output cannot be written.
    fn finish(&mut self, progress: &Progress) -> std::io::Result<()>;

    /// The user detached: leave the terminal clean.
    ///
    /// # Errors
    /// When the output cannot be written.
    fn detach(&mut self, progress: &Progress) -> std::io::Result<()>;
}
