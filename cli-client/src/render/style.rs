//! Colors and text attributes, switched off as a whole when output is not
//! styled (piped, `--no-color`, `NO_COLOR`).

use console::Style;

/// The styles the renderers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    /// Whether escape codes may be written at all.
    pub enabled: bool,
}

impl Theme {
    /// A theme that styles when `enabled`.
    pub fn new(enabled: bool) -> Self {
        Theme { enabled }
    }

    fn base(&self) -> Style {
        Style::new().force_styling(self.enabled)
    }

    /// Unstyled.
    pub fn plain(&self) -> Style {
        self.base()
    }
    /// Bold.
    pub fn bold(&self) -> Style {
        self.base().bold()
    }
    /// Faint, for secondary information.
    pub fn dim(&self) -> Style {
        self.base().dim()
    }
    /// A model's name.
    pub fn model(&self) -> Style {
        self.base().bold().cyan()
    }
    /// Success marks.
    pub fn ok(&self) -> Style {
        self.base().green()
    }
    /// Failure marks and reasons.
    pub fn error(&self) -> Style {
        self.base().red()
    }
    /// Warnings.
    pub fn warn(&self) -> Style {
        self.base().yellow()
    }
    /// Markdown headings.
    pub fn heading(&self, level: usize) -> Style {
        match level {
            1 => self.base().bold().magenta().underlined(),
            2 => self.base().bold().magenta(),
            _ => self.base().bold(),
        }
    }
    /// Inline code and code blocks.
    pub fn code(&self) -> Style {
        self.base().yellow()
    }
    /// Links.
    pub fn link(&self) -> Style {
        self.base().blue().underlined()
    }

    /// `text` in `style`, as a string.
    pub fn paint(&self, style: &Style, text: &str) -> String {
        style.apply_to(text).to_string()
    }
}
