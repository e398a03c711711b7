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
    roundCompleted {number}                 statusChanged {status}
  message = {id, role, model, content, status, error, latencyMs, round,
             usage {promptTokens, completionTokens, costUsd}, createTime,
             failureReason, answeredBy, reasoning, queueMs}.
  Re-attach after a detach with `moai watch <discussion> --after <seq>`.";

const AFTER_HELP: &str = "\
The current project and discussion are remembered per server in
$MOAI_CONFIG_DIR/state.toml (default: the user's config dir, e.g. ~/.config/moai).
Without --api-key or MOAI_API_KEY, the key the local server wrote to
$MOAI_DATA_DIR/local.key (default ~/.local/share/moai/local.key) is used.";

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
    /// Address of the moai server
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

    /// Stop the running round of the current discussion (no more rounds after)
    Stop(DiscussionRef),

    /// Talk to one model of the discussion (`moai ask @model ...` works too)
    #[command(visible_alias = "mention", after_long_help = JSON_EVENTS_HELP)]
    Ask(AskArgs),

    /// Have one model write the consensus: agreements, disagreements, open questions
    #[command(visible_alias = "summary", after_long_help = JSON_EVENTS_HELP)]
    Summarize(SummarizeArgs),

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
    Status,

    /// Print a shell completion script (e.g. `moai completions bash > /etc/bash_completion.d/moai`)
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[cfg(test)]
mod tests;
