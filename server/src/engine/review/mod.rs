//! Anonymous peer review: every model ranks the other answers of a round
//! under shuffled labels, and the round gets a mean-rank leaderboard.
//! These are the pure parts (labels, prompt, parsing; the leaderboard is
//! `domain::leaderboard`, as stored rounds show it too); the run
//! that calls the reviewers lives with the other runs.

pub mod labels;
pub mod prompt;
pub mod ranking;

pub use labels::{Answer, Label, labelled_for};
pub use prompt::{ranking_note, review_messages};
pub use ranking::{ParsedRanking, parse_ranking};
