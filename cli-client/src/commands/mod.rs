//! One module per command, each with an `async fn run(session, args)` that
//! returns the exit code.

use std::io::{IsTerminal, Read, Write};

use crate::args::{Cli, Command, ProjectCommand};
use crate::errors::{CliError, ExitCode};
use crate::session::Session;

pub mod ask;
pub mod current;
pub mod demo;
pub mod discuss;
pub mod discussions;
pub mod export;
pub mod mcp;
pub mod models;
pub mod open;
pub mod project;
pub mod review;
pub mod show;
pub mod stop;
pub mod summarize;
pub mod usage;
pub mod watch;

/// Runs the parsed command line.
///
/// # Errors
/// Whatever the command reports; `main` prints it and exits with its code.
pub async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    if let Command::Completions { shell } = cli.command {
        return completions(shell);
    }
    let mut session = Session::new(cli.global, name(&cli.command))?;
    let session = &mut session;
    match cli.command {
        Command::Project(command) => project::run(session, command).await,
        Command::Use(args) => current::use_project(session, args).await,
        Command::Status(args) => current::status(session, args).await,
        Command::Open(args) => open::run(session, args).await,
        Command::Discuss(args) => discuss::run(session, args).await,
        Command::Next(args) => discuss::next(session, args).await,
        Command::Stop(args) => stop::run(session, args).await,
        Command::Ask(args) => ask::run(session, args).await,
        Command::Summarize(args) => summarize::run(session, args).await,
        Command::Review(args) => review::run(session, args).await,
        Command::Discussions(args) => discussions::run(session, args).await,
        Command::Show(args) => show::run(session, args).await,
        Command::Watch(args) => watch::run(session, args).await,
        Command::Export(args) => export::run(session, args).await,
        Command::Models(args) => models::run(session, args).await,
        Command::Usage(args) => usage::run(session, args).await,
        Command::Mcp => mcp::run(session).await,
        Command::Demo(args) => demo::run(session, args).await,
        Command::Completions { shell } => completions(shell),
    }
}

/// The command's name as the user typed it, for messages.
fn name(command: &Command) -> &'static str {
    match command {
        Command::Project(p) => match p {
            ProjectCommand::Create(_) => "project create",
            ProjectCommand::List => "project list",
            ProjectCommand::Show(_) => "project show",
            ProjectCommand::Rename { .. } => "project rename",
            ProjectCommand::Delete { .. } => "project delete",
            ProjectCommand::Models(_) => "project models",
            ProjectCommand::Edit(_) => "project edit",
        },
        Command::Use(_) => "use",
        Command::Status(_) => "status",
        Command::Open(_) => "open",
        Command::Discuss(_) => "discuss",
        Command::Next(_) => "next",
        Command::Stop(_) => "stop",
        Command::Ask(_) => "ask",
        Command::Summarize(_) => "summarize",
        Command::Review(_) => "review",
        Command::Discussions(_) => "discussions",
        Command::Show(_) => "show",
        Command::Watch(_) => "watch",
        Command::Export(_) => "export",
        Command::Models(_) => "models",
        Command::Usage(_) => "usage",
        Command::Mcp => "mcp",
        Command::Demo(_) => "demo",
        Command::Completions { .. } => "completions",
    }
}

/// Writes the completion script of `shell` to stdout.
fn completions(shell: clap_complete::Shell) -> Result<ExitCode, CliError> {
    use clap::CommandFactory;
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "moai", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)
        .map_err(crate::output::stdout_error)?;
    out.flush().map_err(crate::output::stdout_error)?;
    Ok(ExitCode::Success)
}

/// Free text from the arguments; `-`, or nothing with a pipe on stdin, reads stdin.
///
/// # Errors
/// [`CliError::Usage`] when the text is empty.
pub fn text_argument(words: &[String], what: &str) -> Result<String, CliError> {
    let joined = crate::args::join_words(words);
    let text = if joined == "-" || (joined.is_empty() && !std::io::stdin().is_terminal()) {
        let mut buf = String::new();
        std::io::stdin()
            .read_to_string(&mut buf)
            .map_err(|e| CliError::io(format!("cannot read the {what} from stdin"), e))?;
        buf.trim().to_string()
    } else {
        joined
    };
    if text.is_empty() {
        return Err(CliError::Usage(format!(
            "the {what} is empty; type it after the command, or pipe it in"
        )));
    }
    Ok(text)
}
