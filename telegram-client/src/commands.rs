//! The bot's commands: their names, their arguments and the `/help` text.

use teloxide::utils::command::BotCommands;

use crate::render::html::escape;

/// Every command the bot answers. The doc comments are the short
/// descriptions Telegram shows in its command menu; a new command is a
/// variant here, a line in [`help_html`] and an arm in the handlers'
/// `run_command`.
#[derive(BotCommands, Clone, Debug, PartialEq, Eq)]
#[command(rename_rule = "lowercase")]
pub enum Command {
    /// Welcome and a short guide
    Start,
    /// All commands, grouped
    Help,
    /// List your projects
    Projects,
    /// Create and select a project: /new <name> [model ...]
    New(String),
    /// Select a project: /use <name>
    Use(String),
    /// Show the current project
    Project,
    /// Rename the current project: /rename <new name>
    Rename(String),
    /// Delete a project: /delete <name>
    Delete(String),
    /// The current project's models
    Models,
    /// Add models: /addmodel <id> ...
    Addmodel(String),
    /// Remove models: /removemodel <id> ...
    Removemodel(String),
    /// Models the server offers
    Available,
    /// A fallback for a seat: /fallback <seat> <model>
    Fallback(String),
    /// Ask all models at once: /open <question>
    Open(String),
    /// Discuss in turns: /discuss [until] [rounds] [topic]
    Discuss(String),
    /// Another round of the current discussion
    Next,
    /// Stop the current discussion
    Stop,
    /// Talk to one model: /ask <model> <message>
    Ask(String),
    /// The consensus summary: /consensus [model]
    Consensus(String),
    /// Rank the answers anonymously: /review [round]
    Review(String),
    /// The discussion as a document: /export [md|json]
    Export(String),
    /// Current project, discussion and run
    Status,
    /// What you spent today and this month, and what is left
    Usage,
}

/// Parses a message's text as a command, tolerating what people type:
/// `/Open@moai_bot` as well as a newline right after the command. A command
/// that takes no arguments ignores any. `None` if the text is no known command.
#[must_use]
pub fn parse(text: &str, bot_username: &str) -> Option<Command> {
    let text = text.trim_start();
    if !text.starts_with('/') {
        return None;
    }
    let (head, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let (name, addressee) = head.split_once('@').unwrap_or((head, ""));
    if !addressee.is_empty() && !addressee.eq_ignore_ascii_case(bot_username) {
        return None;
    }
    let name = name.to_lowercase();
    let rest = rest.trim();
    Command::parse(&format!("{name} {rest}"), bot_username)
        .or_else(|_| Command::parse(&name, bot_username))
        .ok()
        .map(|command| command.trimmed())
}

impl Command {
    fn trimmed(self) -> Self {
        match self {
            Command::New(a) => Command::New(a.trim().to_owned()),
            Command::Use(a) => Command::Use(a.trim().to_owned()),
            Command::Rename(a) => Command::Rename(a.trim().to_owned()),
            Command::Delete(a) => Command::Delete(a.trim().to_owned()),
            Command::Addmodel(a) => Command::Addmodel(a.trim().to_owned()),
            Command::Removemodel(a) => Command::Removemodel(a.trim().to_owned()),
            Command::Open(a) => Command::Open(a.trim().to_owned()),
            Command::Discuss(a) => Command::Discuss(a.trim().to_owned()),
            Command::Ask(a) => Command::Ask(a.trim().to_owned()),
            Command::Consensus(a) => Command::Consensus(a.trim().to_owned()),
            Command::Review(a) => Command::Review(a.trim().to_owned()),
            Command::Export(a) => Command::Export(a.trim().to_owned()),
            Command::Fallback(a) => Command::Fallback(a.trim().to_owned()),
            other => other,
        }
    }
}

/// Splits arguments at whitespace; double quotes group words (`"My project"`).
#[must_use]
pub fn words(args: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut started = false;
    for c in args.chars() {
        match c {
            '"' | '“' | '”' => {
                quoted = !quoted;
                started = true;
            }
            c if c.is_whitespace() && !quoted => {
                if started {
                    words.push(std::mem::take(&mut current));
                    started = false;
                }
            }
            c => {
                current.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(current);
    }
    words
}

/// The arguments of `/new`: a name, then model ids.
#[must_use]
pub fn parse_new(args: &str) -> Option<(String, Vec<String>)> {
    let mut words = words(args).into_iter();
    let name = words.next().filter(|n| !n.trim().is_empty())?;
    Some((name, words.collect()))
}

/// The arguments of `/discuss`: an optional number of rounds, then an optional topic.
#[must_use]
pub fn parse_discuss(args: &str) -> (Option<u32>, String) {
    let args = args.trim();
    let (first, rest) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
    match first.parse::<u32>() {
        Ok(rounds) => (Some(rounds), rest.trim().to_owned()),
        Err(_) => (None, args.to_owned()),
    }
}

/// A leading `until` of `/discuss`: run until the models agree, the
/// rounds being the most. Returns whether it was there and the rest.
#[must_use]
pub fn parse_until(args: &str) -> (bool, &str) {
    let args = args.trim();
    let (first, rest) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
    if first.eq_ignore_ascii_case("until") {
        (true, rest.trim())
    } else {
        (false, args)
    }
}

/// Export formats `/export` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportChoice {
    /// A Markdown document.
    Markdown,
    /// The discussion as JSON.
    Json,
}

/// The argument of `/export`: `md` (the default) or `json`.
#[must_use]
pub fn parse_export(args: &str) -> Option<ExportChoice> {
    match args.trim().to_lowercase().as_str() {
        "" | "md" | "markdown" => Some(ExportChoice::Markdown),
        "json" => Some(ExportChoice::Json),
        _ => None,
    }
}

/// The arguments of `/ask`: a model, then what to tell it.
#[must_use]
pub fn parse_ask(args: &str) -> Option<(String, String)> {
    let args = args.trim();
    let (model, content) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
    let model = model.trim_start_matches('@');
    (!model.is_empty()).then(|| (model.to_owned(), content.trim().to_owned()))
}

/// A message addressed to one model: `@model text`.
#[must_use]
pub fn parse_mention(text: &str) -> Option<(String, String)> {
    let text = text.trim_start().strip_prefix('@')?;
    let (model, content) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let model = model.trim_end_matches([':', ',']);
    (!model.is_empty()).then(|| (model.to_owned(), content.trim().to_owned()))
}

/// The `/help` text, grouped, as Telegram HTML.
#[must_use]
pub fn help_html() -> String {
    let groups: [(&str, &[(&str, &str)]); 3] = [
        (
            "Projects",
            &[
                ("/projects", "list yours, the current one marked"),
                ("/new <name> [model ...]", "create and select a project"),
                ("/use <name>", "select a project"),
                ("/project", "show the current one"),
                ("/rename <new name>", "rename the current project"),
                ("/delete <name>", "delete a project (asks to confirm)"),
            ],
        ),
        (
            "Models",
            &[
                ("/models", "the current project's models"),
                ("/addmodel <id> ...", "add models to it"),
                ("/removemodel <id> ...", "remove models from it"),
                ("/available", "what the server's providers offer"),
                (
                    "/fallback <seat> <model>",
                    "a model that answers for a seat when it fails before answering (none removes them)",
                ),
            ],
        ),
        (
            "Discussion",
            &[
                ("/open <question>", "ask all models at once"),
                (
                    "/discuss [rounds] [topic]",
                    "discuss in turns (3 rounds by default); without a topic, continue the current discussion",
                ),
                (
                    "/discuss until [rounds] [topic]",
                    "discuss until a judge finds the models agree, at most that many rounds",
                ),
                ("/next", "another round"),
                (
                    "/stop",
                    "stop the running round; when idle, asks before ending the discussion",
                ),
                (
                    "@model <message>",
                    "talk to one model, with the discussion as context",
                ),
                (
                    "/ask <model> <message>",
                    "the same; use it in groups, where the bot sees only commands and replies",
                ),
                (
                    "reply to an answer",
                    "talk to the model that wrote it, in that answer's discussion",
                ),
                ("/consensus [model]", "ask for the consensus summary"),
                (
                    "/review [round]",
                    "the models rank each other's answers anonymously; ends with a leaderboard",
                ),
                ("/export [md|json]", "the current discussion as a document"),
                (
                    "/status",
                    "current project, discussion, and whether a run is going",
                ),
                (
                    "/usage",
                    "what you spent today and this month, and what is left of your budget",
                ),
            ],
        ),
    ];
    let mut html = String::from("<b>moai</b>: a roundtable of AI models.\n");
    for (title, commands) in groups {
        html.push_str(&format!("\n<b>{title}</b>\n"));
        for (usage, what) in commands {
            html.push_str(&format!("{} — {}\n", escape(usage), escape(what)));
        }
    }
    html.push_str(
        "\n<b>In groups</b>\nThe group shares one set of projects and discussions: \
         every member sees and continues them, and any member may /stop a run.\n",
    );
    html.push_str("\n/start or /help shows this again.");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands_as_people_type_them() {
        assert_eq!(
            parse("/open What is 2+2?", "moai_bot"),
            Some(Command::Open("What is 2+2?".into()))
        );
        assert_eq!(
            parse("/Open@Moai_Bot\nWhy?", "moai_bot"),
            Some(Command::Open("Why?".into()))
        );
        assert_eq!(parse("/stop now please", "moai_bot"), Some(Command::Stop));
        assert_eq!(
            parse("/discuss", "moai_bot"),
            Some(Command::Discuss(String::new()))
        );
        assert_eq!(
            parse("/addmodel a/b c/d", "b"),
            Some(Command::Addmodel("a/b c/d".into()))
        );
        assert_eq!(parse("/open@other_bot hi", "moai_bot"), None);
        assert_eq!(parse("/nonsense", "moai_bot"), None);
        assert_eq!(parse("hello", "moai_bot"), None);
    }

    #[test]
    fn words_respect_quotes() {
        assert_eq!(
            words(r#""My project" a/b  c"#),
            vec!["My project", "a/b", "c"]
        );
        assert_eq!(
            parse_new("Alpha openai/gpt-4o x/y"),
            Some(("Alpha".into(), vec!["openai/gpt-4o".into(), "x/y".into()]))
        );
        assert_eq!(parse_new("  "), None);
    }

    #[test]
    fn discuss_takes_optional_rounds_then_topic() {
        assert_eq!(parse_discuss("2"), (Some(2), String::new()));
        assert_eq!(
            parse_discuss("5 Is Rust fun?"),
            (Some(5), "Is Rust fun?".into())
        );
        assert_eq!(parse_discuss("Is Rust fun?"), (None, "Is Rust fun?".into()));
        assert_eq!(parse_discuss(""), (None, String::new()));
    }

    #[test]
    fn discuss_until_comes_first() {
        assert_eq!(parse_until("until 5"), (true, "5"));
        assert_eq!(
            parse_until("UNTIL 3 Is Rust fun?"),
            (true, "3 Is Rust fun?")
        );
        assert_eq!(parse_until("until"), (true, ""));
        assert_eq!(
            parse_until("5 until they agree"),
            (false, "5 until they agree")
        );
        assert_eq!(
            parse_discuss(parse_until("until 5").1),
            (Some(5), String::new())
        );
    }

    #[test]
    fn export_formats() {
        assert_eq!(parse_export(""), Some(ExportChoice::Markdown));
        assert_eq!(parse_export("JSON"), Some(ExportChoice::Json));
        assert_eq!(parse_export("pdf"), None);
    }

    #[test]
    fn ask_names_a_model_then_the_message() {
        assert_eq!(
            parse("/ask@moai_bot fake/a why not?", "moai_bot"),
            Some(Command::Ask("fake/a why not?".into()))
        );
        assert_eq!(
            parse_ask("@fake/a  why not?"),
            Some(("fake/a".into(), "why not?".into()))
        );
        assert_eq!(parse_ask("fake/a"), Some(("fake/a".into(), String::new())));
        assert_eq!(parse_ask("  "), None);
    }

    #[test]
    fn mentions_name_a_model_then_the_message() {
        assert_eq!(
            parse_mention("@openai/gpt-4o: why?"),
            Some(("openai/gpt-4o".into(), "why?".into()))
        );
        assert_eq!(parse_mention("@x"), Some(("x".into(), String::new())));
        assert_eq!(parse_mention("hello @x"), None);
    }

    #[test]
    fn help_lists_every_command_grouped() {
        let help = help_html();
        for group in ["Projects", "Models", "Discussion"] {
            assert!(help.contains(&format!("<b>{group}</b>")));
        }
        for command in Command::bot_commands() {
            assert!(
                help.contains(&command.command),
                "{} missing from /help",
                command.command
            );
        }
        assert!(help.contains("@model &lt;message&gt;"));
    }
}
