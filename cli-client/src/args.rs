//! The command line: global flags, the command tree and its help texts.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::errors::EXIT_CODES_HELP;

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
    messageDelta {messageId, model, text}   messageCompleted {message}
    messageFailed {messageId, model, error, content}
    roundCompleted {number}                 statusChanged {status}
  message = {id, role, model, content, status, error, latencyMs, round,
             usage {promptTokens, completionTokens, costUsd}, createTime}.
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
        value_name = "URL",
        default_value = "http://127.0.0.1:50051"
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

    /// Show the server, key source, current project and discussion
    Status,
}

/// `moai project ...`
#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Create a project with its models in speaking order
    #[command(visible_alias = "new")]
    Create(ProjectCreateArgs),

    /// List your projects (the current one is marked with *)
    #[command(visible_alias = "ls")]
    List,

    /// Show a project (default: the current one)
    Show(OptionalProject),

    /// Rename a project
    #[command(visible_alias = "mv")]
    Rename {
        /// The project (name or id)
        project: String,
        /// Its new name
        new_name: String,
    },

    /// Delete a project and all of its discussions
    #[command(visible_alias = "rm")]
    Delete {
        /// The project (name or id)
        project: String,
        /// Do not ask for confirmation
        #[arg(short, long)]
        yes: bool,
    },

    /// Add or remove models of a project
    #[command(subcommand)]
    Models(ProjectModelsCommand),
}

/// `moai project models ...`
#[derive(Debug, Subcommand)]
pub enum ProjectModelsCommand {
    /// Append models to the project's speaking order
    Add(ModelListArgs),
    /// Remove models from the project
    #[command(visible_alias = "rm")]
    Remove(ModelListArgs),
}

/// Models to add or remove.
#[derive(Debug, Args)]
pub struct ModelListArgs {
    /// Model ids, such as openai/gpt-4o
    #[arg(required = true, value_name = "MODEL")]
    pub models: Vec<String>,
}

/// `moai project create`
#[derive(Debug, Args)]
pub struct ProjectCreateArgs {
    /// Name of the project, 1-100 characters
    pub name: String,

    /// A model id, in speaking order (repeat, or separate with commas)
    #[arg(
        short,
        long = "model",
        value_name = "ID",
        required = true,
        value_delimiter = ','
    )]
    pub models: Vec<String>,

    /// Extra instructions for every model
    #[arg(short, long, value_name = "TEXT")]
    pub system_prompt: Option<String>,

    /// Model that writes consensus summaries (default: the first model)
    #[arg(long, value_name = "ID")]
    pub summarizer: Option<String>,
}

/// An optional project reference.
#[derive(Debug, Args)]
pub struct OptionalProject {
    /// The project (name or id); default: the current one
    pub project: Option<String>,
}

/// `moai use`
#[derive(Debug, Args)]
pub struct UseArgs {
    /// The project (name or id)
    pub project: String,
}

/// `moai open`
#[derive(Debug, Args)]
pub struct OpenArgs {
    /// The question; `-` or nothing (with a pipe) reads it from stdin
    #[arg(value_name = "QUESTION", num_args = 1..)]
    pub question: Vec<String>,
}

/// `moai discuss`
#[derive(Debug, Args)]
pub struct DiscussArgs {
    /// Number of rounds, 1-10 (the server's default is 3)
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10))]
    pub rounds: Option<u32>,

    /// Continue this discussion instead of the current one
    #[arg(short, long, value_name = "DISCUSSION", conflicts_with = "topic")]
    pub discussion: Option<String>,

    /// A new topic; without one, the current discussion goes on
    #[arg(value_name = "TOPIC", num_args = 1..)]
    pub topic: Vec<String>,
}

/// A discussion given explicitly or the current one.
#[derive(Debug, Args)]
pub struct DiscussionRef {
    /// The discussion id (or a unique prefix); default: the current one
    #[arg(value_name = "DISCUSSION")]
    pub discussion: Option<String>,
}

/// `moai ask`
#[derive(Debug, Args)]
pub struct AskArgs {
    /// The discussion to speak in; default: the current one
    #[arg(short, long, value_name = "DISCUSSION")]
    pub discussion: Option<String>,

    /// The model, as `@model` or `model` (a unique part of its id is enough)
    #[arg(value_name = "MODEL")]
    pub model: String,

    /// What to say to it
    #[arg(value_name = "MESSAGE", num_args = 1..)]
    pub message: Vec<String>,
}

/// `moai summarize`
#[derive(Debug, Args)]
pub struct SummarizeArgs {
    /// The model that writes it (default: the project's summarizer)
    #[arg(short, long, value_name = "MODEL")]
    pub model: Option<String>,

    /// The discussion; default: the current one
    #[arg(value_name = "DISCUSSION")]
    pub discussion: Option<String>,
}

/// `moai discussions`
#[derive(Debug, Args)]
pub struct DiscussionsArgs {
    /// List the discussions of every project, not only the current one
    #[arg(short, long, conflicts_with = "project")]
    pub all: bool,

    /// How many to list at most
    #[arg(short = 'n', long, default_value_t = 20, value_name = "N")]
    pub limit: usize,
}

/// `moai watch`
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The discussion id (or a unique prefix); default: the current one
    #[arg(value_name = "DISCUSSION")]
    pub discussion: Option<String>,

    /// Only show events after this seq (as printed when you detached)
    #[arg(long, value_name = "SEQ", default_value_t = 0)]
    pub after: u64,
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormatArg {
    /// A readable Markdown document
    #[value(alias = "markdown")]
    Md,
    /// The whole discussion as JSON
    Json,
}

/// `moai export`
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The discussion id (or a unique prefix); default: the current one
    #[arg(value_name = "DISCUSSION")]
    pub discussion: Option<String>,

    /// Document format
    #[arg(short, long, value_enum, default_value = "md")]
    pub format: ExportFormatArg,

    /// Write to this file (a directory takes the server's file name; `-` is stdout)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `moai models`
#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// Only models whose id or name contains this text
    #[arg(value_name = "FILTER")]
    pub filter: Option<String>,
}

impl AskArgs {
    /// The model and message, accepting `@model`, `model`, and one quoted
    /// `"@model message"` argument.
    pub fn target(&self) -> (String, String) {
        let raw = self.model.trim();
        let (model, rest) = match raw.split_once(char::is_whitespace) {
            Some((m, r)) => (m, Some(r.trim())),
            None => (raw, None),
        };
        let model = model.trim_start_matches('@').to_string();
        let mut words: Vec<&str> = rest.into_iter().filter(|r| !r.is_empty()).collect();
        words.extend(self.message.iter().map(String::as_str));
        (model, words.join(" "))
    }
}

/// Joins the words of a free-text argument.
pub fn join_words(words: &[String]) -> String {
    words.join(" ").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("moai").chain(args.iter().copied()))
    }

    fn ask(args: &[&str]) -> (String, String) {
        match parse(args).expect("parses").command {
            Command::Ask(a) => a.target(),
            other => panic!("not ask: {other:?}"),
        }
    }

    #[test]
    fn the_command_tree_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn ask_accepts_at_model_and_bare_model() {
        assert_eq!(
            ask(&["ask", "@gpt", "hello", "there"]),
            ("gpt".into(), "hello there".into())
        );
        assert_eq!(
            ask(&["ask", "openai/gpt-4o", "hi"]),
            ("openai/gpt-4o".into(), "hi".into())
        );
        assert_eq!(
            ask(&["ask", "@claude what now?"]),
            ("claude".into(), "what now?".into())
        );
    }

    #[test]
    fn ask_takes_dashes_after_a_double_dash() {
        assert_eq!(
            ask(&["ask", "@m", "--", "is", "-1", "--odd?"]).1,
            "is -1 --odd?"
        );
    }

    #[test]
    fn global_flags_go_anywhere() {
        let cli = parse(&["open", "why?", "--json", "--project", "p1"]).expect("parses");
        assert!(cli.global.json);
        assert_eq!(cli.global.project.as_deref(), Some("p1"));
    }

    #[test]
    fn create_takes_repeated_and_comma_separated_models() {
        let cli =
            parse(&["project", "create", "x", "-m", "a/b,c/d", "--model", "e/f"]).expect("parses");
        match cli.command {
            Command::Project(ProjectCommand::Create(c)) => {
                assert_eq!(c.models, ["a/b", "c/d", "e/f"])
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn create_requires_a_model() {
        assert!(parse(&["project", "create", "x"]).is_err());
    }

    #[test]
    fn rounds_are_bounded() {
        assert!(parse(&["discuss", "--rounds", "0", "t"]).is_err());
        assert!(parse(&["discuss", "--rounds", "11", "t"]).is_err());
        let cli = parse(&["discuss", "--rounds", "2", "a", "topic"]).expect("parses");
        match cli.command {
            Command::Discuss(d) => {
                assert_eq!(d.rounds, Some(2));
                assert_eq!(join_words(&d.topic), "a topic");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn export_formats_and_output() {
        let cli = parse(&["export", "-f", "json", "-o", "x.json"]).expect("parses");
        match cli.command {
            Command::Export(e) => {
                assert_eq!(e.format, ExportFormatArg::Json);
                assert_eq!(e.output, Some(PathBuf::from("x.json")));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn aliases_work() {
        assert!(matches!(
            parse(&["project", "ls"]).expect("ls").command,
            Command::Project(ProjectCommand::List)
        ));
        assert!(matches!(
            parse(&["o", "q"]).expect("o").command,
            Command::Open(_)
        ));
    }
}
