//! `moai-server`: parses configuration and runs the library's application.

/// mimalloc: less time in the allocator and less fragmentation than the
/// system allocator under many concurrent streams, and it hands freed memory
/// back to the system within milliseconds, so a server whose load comes in
/// waves does not keep its peak. (jemalloc did as well, but its C build took
/// two CPU-minutes of every cold build.)
#[cfg(all(unix, not(target_env = "musl")))]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;

/// The moai core service: roundtable discussions between AI models over gRPC.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// TOML configuration file (environment variables win over it).
    #[arg(long, short, env = "MOAI_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    moai_proto::tls::install_crypto_provider();
    moai_server::telemetry::init("info");
    let settings =
        moai_server::Settings::load(args.config.as_deref()).context("loading configuration")?;
    let app = moai_server::Application::build(settings)
        .await
        .context("starting the server")?;
    app.run_until(shutdown_signal()).await.context("serving")?;
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
