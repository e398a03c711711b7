//! The arguments of the commands that start, follow, show and export discussions.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

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

    /// Stop as soon as a judge (the project's summarizer, else its first model)
    /// finds the models agree; --rounds is then the most rounds
    #[arg(long)]
    pub until_consensus: bool,

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

/// `moai status`
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Wait up to SECS for the server to answer (for scripts that just started it)
    #[arg(long, value_name = "SECS")]
    pub wait: Option<u64>,
}

/// `moai demo`
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The question for the demo roundtable
    #[arg(value_name = "QUESTION", default_value = "Tabs or spaces?")]
    pub question: Vec<String>,
}

/// `moai stop`
#[derive(Debug, Args)]
pub struct StopArgs {
    /// The discussion id (or a unique prefix); default: the current one
    #[arg(value_name = "DISCUSSION")]
    pub discussion: Option<String>,

    /// Also when nothing is running: end the discussion for good (no more rounds, mentions or summaries)
    #[arg(long)]
    pub close: bool,
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

/// `moai review`
#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// The round to review (default: the latest round with model answers)
    #[arg(short, long, value_name = "N")]
    pub round: Option<u32>,

    /// The discussion; default: the current one
    #[arg(value_name = "DISCUSSION")]
    pub discussion: Option<String>,
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

/// `moai usage`
#[derive(Debug, Args)]
pub struct UsageArgs {
    /// Another principal's usage (admin principals only)
    #[arg(long, value_name = "NAME", conflicts_with = "all")]
    pub principal: Option<String>,

    /// Every principal with spend this month (admin principals only)
    #[arg(long)]
    pub all: bool,
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
