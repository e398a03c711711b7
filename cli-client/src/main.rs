//! `moai`: the command-line client. Parses, runs, prints one line on error.

use std::io::{IsTerminal, Write};

use anyhow::Context;
use clap::Parser;
use moai_cli::args::Cli;
use moai_cli::{CliError, ExitCode};

fn main() -> std::process::ExitCode {
    install_panic_hook();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let e = moai_cli::args::tidy_suggestions(e);
            let _ = e.print();
            return std::process::ExitCode::from(if e.use_stderr() {
                ExitCode::Usage.code()
            } else {
                0
            });
        }
    };
    init_logging();
    moai_proto::tls::install_crypto_provider();
    let result = runtime().map(|rt| rt.block_on(moai_cli::run(cli)));
    let code = match result {
        Ok(Ok(code)) => code,
        Ok(Err(CliError::Io { source, .. })) if source.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::Success
        }
        Ok(Err(e)) => {
            report(&e.to_string());
            e.exit_code()
        }
        Err(e) => {
            report(&format!("{e:#}"));
            ExitCode::Internal
        }
    };
    std::process::ExitCode::from(code.code())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// `error: <message>` on stderr, in red on a terminal.
fn report(message: &str) {
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let label = console::style("error:").red().bold().force_styling(color);
    let _ = writeln!(std::io::stderr(), "{label} {message}");
}

/// `MOAI_LOG=debug` shows what the client does, on stderr.
fn init_logging() {
    if let Ok(filter) = std::env::var("MOAI_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .try_init();
    }
}

/// A bug must still end in one readable line and a usable terminal.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        if std::io::stdout().is_terminal() {
            let _ = std::io::stdout().write_all(b"\x1b[?25h");
        }
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        report(&format!(
            "internal error{location}: {message} (this is a bug in moai; please report it)"
        ));
        std::process::exit(i32::from(ExitCode::Internal.code()));
    }));
}
