//! moai's core service: the gRPC API, the discussion engine, the model
//! providers and the store. `main.rs` only parses configuration and calls
//! [`startup::Application`], so tests run the very same server in-process.

pub mod api;
pub mod auth;
pub mod budget;
pub mod config;
pub mod domain;
pub mod engine;
pub mod http;
pub mod llm;
pub mod metrics;
pub mod relay;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod wire;

pub use config::Settings;
pub use startup::Application;
