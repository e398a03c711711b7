//! The bot end to end: the real dispatcher (and the binary) against the fake
//! Telegram Bot API and the real moai server with the fake model upstream.

#[path = "bot/commands.rs"]
mod commands;
#[path = "bot/groups.rs"]
mod groups;
#[path = "bot/lifecycle.rs"]
mod lifecycle;
#[path = "bot/streaming.rs"]
mod streaming;
#[path = "bot/support.rs"]
mod support;
#[path = "bot/tls.rs"]
mod tls;
