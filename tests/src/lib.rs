//! The moai test kit: the real server in-process ([`server::TestServer`]),
//! the fake OpenAI-compatible upstream ([`fake_llm::FakeLlm`]), and helpers.

pub mod events;
pub use moai_fake_llm as fake_llm;
pub mod fake_telegram;
pub mod mcp_client;
pub mod process;
pub mod redis;
pub mod server;
pub mod tls;
pub mod wait;
