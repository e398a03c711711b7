//! One log stack for the whole process.

use tracing_subscriber::EnvFilter;

/// Installs a `tracing` subscriber filtered by `RUST_LOG` (default `info`).
/// Safe to call more than once: later calls do nothing.
pub fn init(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}
