//! The arguments of `moai project ...`.

use clap::{Args, Subcommand};

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

    /// Change a project's system prompt, summarizer or whole model list
    #[command(visible_alias = "set")]
    Edit(ProjectEditArgs),
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

    /// A fallback that answers for SEAT when its model fails before its first
    /// token (repeat; tried in order, at most 3 per seat)
    #[arg(long = "fallback", value_name = "SEAT=MODEL")]
    pub fallbacks: Vec<String>,
}

/// An optional project reference.
#[derive(Debug, Args)]
pub struct OptionalProject {
    /// The project (name or id); default: the current one
    pub project: Option<String>,
}

/// `moai project edit`
#[derive(Debug, Args)]
pub struct ProjectEditArgs {
    /// The project (name or id); default: the current one
    pub project: Option<String>,

    /// New extra instructions for every model (`""` clears them)
    #[arg(short, long, value_name = "TEXT")]
    pub system_prompt: Option<String>,

    /// New default summarizer model (`""` means the first model)
    #[arg(long, value_name = "ID")]
    pub summarizer: Option<String>,

    /// Replace the whole model list, in speaking order (repeat, or separate with commas)
    #[arg(short, long = "model", value_name = "ID", value_delimiter = ',')]
    pub models: Vec<String>,

    /// Replace all fallbacks: SEAT=MODEL (repeat; tried in order, at most 3 per seat)
    #[arg(
        long = "fallback",
        value_name = "SEAT=MODEL",
        conflicts_with = "no_fallbacks"
    )]
    pub fallbacks: Vec<String>,

    /// Remove all fallbacks
    #[arg(long)]
    pub no_fallbacks: bool,
}
