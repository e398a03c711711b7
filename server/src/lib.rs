//! moai server
pub mod llm;
