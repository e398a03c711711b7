//! One invocation's context: the global flags, the output, the remembered
//! state and, once needed, the connection.

use crate::args::GlobalArgs;
use crate::client::Client;
use crate::config;
use crate::errors::CliError;
use crate::output::Output;
use crate::state::{ServerState, State};

/// What every command gets.
pub struct Session {
    /// The global flags.
    pub global: GlobalArgs,
    /// The normalized server address.
    pub server: String,
    /// Output settings.
    pub out: Output,
    /// The CLI command, for messages (`open`, `project create`).
    pub command: &'static str,
    state: State,
    client: Option<Client>,
}

impl Session {
    /// Reads the flags and the state file; connects nowhere yet.
    ///
    /// # Errors
    /// A bad server address or a damaged state file.
    pub fn new(global: GlobalArgs, command: &'static str) -> Result<Self, CliError> {
        Self::with_state_dir(global, command, &config::config_dir())
    }

    /// Like [`Session::new`], with the state file in `state_dir` (the demo
    /// keeps its own, so that the user's current project stays as it was).
    ///
    /// # Errors
    /// A bad server address or a damaged state file.
    pub fn with_state_dir(
        global: GlobalArgs,
        command: &'static str,
        state_dir: &std::path::Path,
    ) -> Result<Self, CliError> {
        let server = config::server_url(&global.server)?;
        let mut out = Output::detect(global.json, global.no_color);
        out.show_reasoning = global.show_reasoning;
        let state = State::load(State::path_in(state_dir))
            .map_err(|e| CliError::Internal(e.to_string()))?;
        Ok(Session {
            global,
            server,
            out,
            command,
            state,
            client: None,
        })
    }

    /// The connection, made on first use: the server first (is it
    /// running?), then the key.
    ///
    /// # Errors
    /// The server cannot be reached, or there is no key.
    pub async fn client(&mut self) -> Result<Client, CliError> {
        if let Some(client) = &self.client {
            return Ok(client.clone());
        }
        let channel = crate::client::connect(&self.server).await?;
        let key = config::resolve_key(self.global.api_key.as_deref())?;
        let client = Client::new(channel, &self.server, &key, self.command)?;
        self.client = Some(client.clone());
        Ok(client)
    }

    /// What is remembered for this server.
    pub fn remembered(&self) -> ServerState {
        self.state.server(&self.server)
    }

    /// Changes what is remembered for this server.
    ///
    /// # Errors
    /// When the state file cannot be written.
    pub fn remember(&mut self, change: impl FnOnce(&mut ServerState)) -> Result<(), CliError> {
        self.state
            .update(&self.server, change)
            .map_err(|e| CliError::Internal(e.to_string()))
    }
}

impl Session {
    /// Like [`Session::remember`], but a failure is only a warning: used after
    /// the server did what was asked, which must not be reported as failed.
    pub fn remember_or_warn(&mut self, change: impl FnOnce(&mut ServerState)) {
        if let Err(e) = self.remember(change) {
            self.out.note(&format!("warning: {e}"));
        }
    }
}
