//! The `moai` command-line client: a thin gRPC client of the moai server that
//! renders discussion runs live on a terminal, as plain Markdown when piped, or
//! as NDJSON with `--json`.
//!
//! The binary (`main.rs`) only parses arguments, starts a runtime and prints
//! the error; everything else lives here so that it can be tested.

pub mod args;
pub mod client;
pub mod commands;
pub mod config;
pub mod errors;
pub mod fallbacks;
pub mod output;
pub mod render;
pub mod resolve;
pub mod session;
pub mod state;
pub mod stream;

pub use commands::run;
pub use errors::{CliError, ExitCode};
