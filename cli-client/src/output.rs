//! Where output goes and how it looks: live on a terminal, plain when piped,
//! JSON with `--json`; colors unless `--no-color`, `NO_COLOR` or a pipe.

use std::io::{IsTerminal, Write};

use moai_proto::json::ToJson;

use crate::errors::CliError;
use crate::render::Renderer;
use crate::render::json::Json;
use crate::render::live::Live;
use crate::render::plain::Plain;
use crate::render::style::Theme;

/// How a run is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A terminal: the redrawn live view.
    Live,
    /// A pipe or file: whole answers, no escape codes.
    Plain,
    /// NDJSON.
    Json,
}

/// The output settings of one invocation.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// How runs are shown.
    pub mode: Mode,
    /// Styles for stdout.
    pub theme: Theme,
    /// Styles for stderr.
    pub err_theme: Theme,
    /// Print reasoning models' thinking with their answers (`--show-reasoning`).
    pub show_reasoning: bool,
}

impl Output {
    /// Looks at the terminal and the environment.
    pub fn detect(json: bool, no_color: bool) -> Self {
        let no_color = no_color || std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        let stdout_tty = std::io::stdout().is_terminal() && !dumb;
        let stderr_tty = std::io::stderr().is_terminal() && !dumb;
        let mode = if json {
            Mode::Json
        } else if stdout_tty {
            Mode::Live
        } else {
            Mode::Plain
        };
        Output {
            mode,
            theme: Theme::new(mode == Mode::Live && !no_color),
            err_theme: Theme::new(stderr_tty && !no_color),
            show_reasoning: false,
        }
    }

    /// The renderer of a run in this mode.
    pub fn renderer(&self) -> Box<dyn Renderer> {
        match self.mode {
            Mode::Live => Box::new(
                Live::new(std::io::stdout(), self.theme, None).show_reasoning(self.show_reasoning),
            ),
            Mode::Plain => Box::new(
                Plain::new(std::io::stdout(), std::io::stderr())
                    .show_reasoning(self.show_reasoning),
            ),
            Mode::Json => Box::new(Json::new(std::io::stdout())),
        }
    }

    /// The terminal's width, when stdout is one.
    pub fn width(&self) -> Option<usize> {
        (self.mode == Mode::Live).then(|| usize::from(console::Term::stdout().size().1).max(20))
    }

    /// The width to lay text out in: the terminal's, else 80.
    pub fn text_width(&self) -> usize {
        self.width().unwrap_or(80).min(120)
    }

    /// Prints lines to stdout.
    ///
    /// # Errors
    /// When stdout is closed.
    pub fn lines(&self, lines: &[String]) -> Result<(), CliError> {
        let mut out = std::io::stdout().lock();
        for line in lines {
            writeln!(out, "{line}").map_err(stdout_error)?;
        }
        out.flush().map_err(stdout_error)
    }

    /// Prints lines that may be long: through a pager (`MOAI_PAGER`, else
    /// `PAGER`, else `less -FRX`) when they overflow a terminal, else directly.
    /// An empty `MOAI_PAGER` turns paging off.
    ///
    /// # Errors
    /// When stdout is closed.
    pub fn page(&self, lines: &[String]) -> Result<(), CliError> {
        let rows = usize::from(console::Term::stdout().size().0);
        if self.mode != Mode::Live || lines.len() < rows {
            return self.lines(lines);
        }
        let pager = std::env::var("MOAI_PAGER")
            .or_else(|_| std::env::var("PAGER"))
            .unwrap_or_else(|_| "less -FRX".into());
        let mut words = pager.split_whitespace();
        let Some(program) = words.next() else {
            return self.lines(lines);
        };
        let spawned = std::process::Command::new(program)
            .args(words)
            .env("LESSCHARSET", "utf-8")
            .stdin(std::process::Stdio::piped())
            .spawn();
        let Ok(mut child) = spawned else {
            return self.lines(lines);
        };
        if let Some(mut stdin) = child.stdin.take() {
            for line in lines {
                // The user quitting the pager early closes the pipe: not an error.
                if writeln!(stdin, "{line}").is_err() {
                    break;
                }
            }
        }
        child
            .wait()
            .map_err(|e| CliError::io(format!("the pager {program} failed"), e))?;
        Ok(())
    }

    /// Prints one message as a line of JSON.
    ///
    /// # Errors
    /// When stdout is closed.
    pub fn json<M: ToJson>(&self, message: &M) -> Result<(), CliError> {
        let line =
            crate::render::json::line(message).map_err(|e| CliError::Internal(e.to_string()))?;
        self.lines(&[line])
    }

    /// A note for the user on stderr (never part of the data on stdout).
    pub fn note(&self, text: &str) {
        let _ = writeln!(
            std::io::stderr(),
            "{}",
            self.err_theme.paint(&self.err_theme.dim(), text)
        );
    }

    /// A success message: on stdout for a terminal, on stderr when piped.
    ///
    /// # Errors
    /// When stdout is closed.
    pub fn done(&self, text: &str) -> Result<(), CliError> {
        match self.mode {
            Mode::Live => self.lines(&[format!(
                "{} {text}",
                self.theme.paint(&self.theme.ok(), "✓")
            )]),
            Mode::Plain | Mode::Json => {
                self.note(text);
                Ok(())
            }
        }
    }
}

/// A failed write to stdout.
pub fn stdout_error(e: std::io::Error) -> CliError {
    CliError::io("cannot write to stdout", e)
}
