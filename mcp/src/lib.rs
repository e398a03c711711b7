//! moai as an MCP server: the tools `ask_council`, `discuss`,
//! `list_projects` and `get_discussion`, written once over a [`Council`].
//! The CLI's `moai mcp` (stdio) backs them with gRPC calls to a server; the
//! server's `/mcp` (streamable HTTP) backs them with its engine.

mod council;
mod render;
mod tools;

pub use council::{Council, Events};
pub use render::discussion_text;
pub use tools::{AskCouncil, Discuss, GetDiscussion, MoaiMcp};
