//! Turning model output into Telegram messages.

pub mod answer;
pub mod council;
pub mod html;
pub mod split;
mod table;
mod usage;

pub use usage::usage_html;
