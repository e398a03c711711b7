//! The command line: global flags, the command tree and its help texts.

use clap::{Args, Parser, Subcommand};

use crate::errors::EXIT_CODES_HELP;

mod discussion;
mod project;

pub use discussion::*;
pub use project::*;

/// Where the server listens unless told otherwise.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:50051";

/// The NDJSON schema of `--json` on the commands that run or watch a round.
pub const JSON_EVENTS_HELP: &str = "\
JSON OUTPUT (--json):
  One JSON object per line (NDJSON): a moai.v1.DiscussionEvent in canonical
  proto3 JSON (camelCase names, enum names as strings, RFC 3339 times, 64-bit
  integers such as seq and token counts as strings; fields equal to their
  default are left out). Every object has \"discussionId\", \"seq\"
  and \"time\", and exactly one payload key:
    discussionStarted {discussion}          roundStarted {number, mode, models[]}
    messageStarted {messageId, model, round, role}
    messageDelta {messageId, model, text, reasoning}
    messageCompleted {message}
    messageFailed {messageId, model, error, content, reason, answeredBy}
    messageQueued {messageId, model, queuedMs}
    messageFallback {messageId, model, answeredBy, error, reason}
    roundCompleted {number, ranking[], consensus, outcome, judgedRounds}
    statusChanged {status}
  message = {id, role, model, content, status, error, latencyMs, round,
             usage {promptTokens, completionTokens, costUsd}, createTime,
             failureReason, answeredBy, reasoning, queueMs,
             ranking[], labels[], rankingUnparsed, consensus}.
  ranking[] of roundCompleted = {model, averageRank, votes, place}, best first.
  Re-attach after a detach with `moai watch <discussion> --after <seq>`.";

const DEMO_HELP: &str = "\
Try moai offline, in one terminal: starts the demo model server (moai-fake-llm \
--demo: three stand-in models, demo/alpha, demo/beta and demo/gamma, each with \
its own voice) and a moai-server of its own on free loopback ports, with a fresh \
SQLite database and both logs in $MOAI_DATA_DIR/demo/; waits until the server \
answers; asks the question with `open`, lets the models discuss one round in \
turns, each hearing the others; then stops both. Your own current project and \
discussion stay as they were. moai-server and moai-fake-llm must sit next to the \
moai binary: cargo build --release --bin moai --bin moai-server --bin moai-fake-llm";

const AFTER_HELP: &str = "\
The current project and discussion are remembered per server in
$MOAI_CONFIG_DIR/state.toml (default: the user's config dir, e.g. ~/.config/moai).
Without --api-key or MOAI_API_KEY, the key the local server wrote to
$MOAI_DATA_DIR/local.key (default ~/.local/share/moai/local.key) is used.
An https:// server is verified against the system's CAs plus MOAI_CA_CERT (a
PEM bundle, e.g. a team's private CA); MOAI_TLS_CLIENT_CERT and
MOAI_TLS_CLIENT_KEY (PEM files) are the client certificate for a server that
asks for one.";

/// `moai`: roundtable discussions between AI models, from a terminal.
#[derive(Debug, Parser)]
#[command(
    name = "moai",
    version,
    about = "Roundtable discussions between AI models, from a terminal",
    long_about = None,
    after_help = format!("{AFTER_HELP}\n\n{EXIT_CODES_HELP}"),
    propagate_version = true,
    arg_required_else_help = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command accepts.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Address of the moai server (http:// or https://)
    #[arg(
        long,
        global = true,
        env = "MOAI_SERVER",
        hide_env_values = true,
        value_name = "URL",
        default_value = DEFAULT_SERVER
    )]
    pub server: String,

    /// API key (else the local server's key file)
    #[arg(
        long,
        global = true,
        env = "MOAI_API_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,

    /// Project to use instead of the current one (name or id)
    #[arg(short = 'p', long, global = true, value_name = "PROJECT")]
    pub project: Option<String>,

    /// Print machine-readable JSON (NDJSON for event streams and lists)
    #[arg(long, global = true)]
    pub json: bool,

    /// Never use colors (NO_COLOR is honoured too)
    #[arg(long, global = true)]
    pub no_color: bool,

    /// Print reasoning models' thinking above their answers (else only "thinking…" while they think)
    #[arg(long, global = true)]
    pub show_reasoning: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, list, show, rename and delete projects, and edit their models
    #[command(subcommand, visible_alias = "projects")]
    Project(ProjectCommand),

    /// Make a project the current one (by name or id)
    #[command(visible_alias = "switch")]
    Use(UseArgs),

    /// Ask all of the project's models one question at once
    #[command(visible_alias = "o", after_long_help = JSON_EVENTS_HELP)]
    Open(OpenArgs),

    /// Have the models discuss in turns; without a topic, continue the current discussion
    #[command(visible_alias = "d", after_long_help = JSON_EVENTS_HELP)]
    Discuss(DiscussArgs),

    /// Run one more round of the current discussion
    #[command(after_long_help = JSON_EVENTS_HELP)]
    Next(DiscussionRef),

    /// Stop the running round of the current discussion (it then takes no more rounds); --close ends an idle one
    Stop(StopArgs),

    /// Talk to one model of the discussion (`moai ask @model ...` works too)
    #[command(visible_alias = "mention", after_long_help = JSON_EVENTS_HELP)]
    Ask(AskArgs),

    /// Have one model write the consensus: agreements, disagreements, open questions
    #[command(visible_alias = "summary", after_long_help = JSON_EVENTS_HELP)]
    Summarize(SummarizeArgs),

    /// Have the models rank each other's answers of a round anonymously, then show the leaderboard
    #[command(after_long_help = JSON_EVENTS_HELP)]
    Review(ReviewArgs),

    /// List discussions, newest first
    #[command(visible_alias = "history")]
    Discussions(DiscussionsArgs),

    /// Show a discussion with all of its rounds and messages
    Show(DiscussionRef),

    /// Follow a discussion's run live (replays what you missed first)
    #[command(visible_alias = "attach", after_long_help = JSON_EVENTS_HELP)]
    Watch(WatchArgs),

    /// Export a discussion as Markdown or JSON
    Export(ExportArgs),

    /// List the models the server's providers offer
    Models(ModelsArgs),

    /// What you spent today and this month, your budgets, and spend per model
    Usage(UsageArgs),

    /// Show the server, key source, current project and discussion
    Status(StatusArgs),

    /// Try moai offline: start stand-in models and a server, then run a roundtable
    #[command(long_about = DEMO_HELP)]
    Demo(DemoArgs),

    /// Serve moai to an AI assistant over MCP on stdin/stdout
    ///
    /// Tools: ask_council(question, project?), discuss(topic, project?, rounds?),
    /// list_projects, get_discussion(id). Without a project they use -p/--project,
    /// else your first one.
    /// Configure the assistant to run `moai mcp` (with --server and --api-key or
    /// MOAI_SERVER and MOAI_API_KEY when the server is not the local one).
    Mcp,

    /// Print a shell completion script (e.g. `moai completions bash > /etc/bash_completion.d/moai`)
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Drops the one-letter aliases (`o`, `d`) from clap's "a similar
/// subcommand exists" tip: clap finds them similar to almost any typo.
pub fn tidy_suggestions(mut err: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue};
    let typed = match err.get(ContextKind::InvalidSubcommand) {
        Some(ContextValue::String(s)) => s.chars().count(),
        _ => return err,
    };
    if let Some(ContextValue::Strings(names)) = err.remove(ContextKind::SuggestedSubcommand) {
        let kept: Vec<String> = names
            .into_iter()
            .filter(|n| n.chars().count() > 1 || typed <= 2)
            .collect();
        if !kept.is_empty() {
            err.insert(
                ContextKind::SuggestedSubcommand,
                ContextValue::Strings(kept),
            );
        }
    }
    err
}

#[cfg(test)]
mod tests;
