//! Turning model output into Telegram messages.

pub mod html;
pub mod split;
