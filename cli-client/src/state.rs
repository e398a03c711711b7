//! The remembered current project, and the current discussion of each
//! project, per server, in a small TOML file (`state.toml` in the config
//! directory). Per project, so that working in another project with `-p`
//! never changes what a plain command means in the current one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Why the state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// "read" or "write".
        action: &'static str,
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("{path} is damaged ({message}); delete it to start afresh")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// What is remembered for one server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerState {
    /// Id of the current project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Name of the current project when it was selected (for display only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_name: Option<String>,
    /// The current discussion of each project: project id -> discussion id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub discussions: BTreeMap<String, String>,
    /// Files written before discussions were kept per project had one
    /// current discussion per server; it is read as the current project's.
    #[serde(default, rename = "discussion", skip_serializing)]
    legacy_discussion: Option<String>,
}

impl ServerState {
    /// The current discussion of `project_id`.
    pub fn discussion_of(&self, project_id: &str) -> Option<&str> {
        self.discussions.get(project_id).map(String::as_str)
    }

    /// The current discussion of the current project.
    pub fn current_discussion(&self) -> Option<&str> {
        self.project.as_deref().and_then(|p| self.discussion_of(p))
    }

    /// Forgets `project_id` and its current discussion.
    pub fn forget_project(&mut self, project_id: &str) {
        self.discussions.remove(project_id);
        if self.project.as_deref() == Some(project_id) {
            self.project = None;
            self.project_name = None;
        }
    }

    /// Forgets `discussion_id` wherever it is the current one.
    pub fn forget_discussion(&mut self, discussion_id: &str) {
        self.discussions.retain(|_, d| d != discussion_id);
    }

    /// Folds a legacy per-server discussion into the per-project map.
    fn upgrade(&mut self) {
        if let Some(discussion) = self.legacy_discussion.take()
            && let Some(project) = &self.project
        {
            self.discussions
                .entry(project.clone())
                .or_insert(discussion);
        }
    }
}

/// The whole file: one table per server address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateFile {
    /// Keyed by the normalized server address.
    #[serde(default)]
    pub servers: BTreeMap<String, ServerState>,
}

/// The state file on disk together with its path.
#[derive(Debug, Clone)]
pub struct State {
    path: PathBuf,
    file: StateFile,
}

impl State {
    /// The state file's path in `config_dir`.
    pub fn path_in(config_dir: &Path) -> PathBuf {
        config_dir.join("state.toml")
    }

    /// Loads the file; a missing file is an empty state.
    ///
    /// # Errors
    /// When the file exists but cannot be read or parsed.
    pub fn load(path: PathBuf) -> Result<Self, StateError> {
        let mut file: StateFile = match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| StateError::Parse {
                path: path.display().to_string(),
                message: crate::errors::one_line(e.message()),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => StateFile::default(),
            Err(source) => {
                return Err(StateError::Io {
                    action: "read",
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        file.servers.values_mut().for_each(ServerState::upgrade);
        Ok(State { path, file })
    }

    /// What is remembered for `server`.
    pub fn server(&self, server: &str) -> ServerState {
        self.file
            .servers
            .get(&normalize(server))
            .cloned()
            .unwrap_or_default()
    }

    /// Changes what is remembered for `server` and writes the file.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn update(
        &mut self,
        server: &str,
        change: impl FnOnce(&mut ServerState),
    ) -> Result<(), StateError> {
        let entry = self.file.servers.entry(normalize(server)).or_default();
        let before = entry.clone();
        change(entry);
        if *entry == before {
            return Ok(());
        }
        if *entry == ServerState::default() {
            self.file.servers.remove(&normalize(server));
        }
        self.save()
    }

    /// Writes the file atomically (a temporary file renamed over it).
    fn save(&self) -> Result<(), StateError> {
        let io = |source| StateError::Io {
            action: "write",
            path: self.path.display().to_string(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let text = toml::to_string_pretty(&self.file).map_err(|e| StateError::Parse {
            path: self.path.display().to_string(),
            message: e.to_string(),
        })?;
        let tmp = self
            .path
            .with_extension(format!("toml.{}.tmp", std::process::id()));
        std::fs::write(
            &tmp,
            format!(
                "# Written by moai: the current project, and each project's current discussion, per server.\n{text}"
            ),
        )
        .map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)
    }
}

/// One key per server however its address is written (`http://localhost:50051/`).
pub fn normalize(server: &str) -> String {
    server.trim().trim_end_matches('/').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = State::load(State::path_in(dir.path())).expect("loads");
        assert_eq!(state.server("http://x"), ServerState::default());
    }

    #[test]
    fn state_round_trips_per_server() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = State::path_in(&dir.path().join("nested"));
        let mut state = State::load(path.clone()).expect("loads");
        state
            .update("http://a:1/", |s| {
                s.project = Some("p1".into());
                s.discussions.insert("p1".into(), "d1".into());
            })
            .expect("saves");
        state
            .update("http://b:2", |s| s.project = Some("p2".into()))
            .expect("saves");

        let again = State::load(path).expect("loads");
        assert_eq!(again.server("HTTP://A:1").current_discussion(), Some("d1"));
        assert_eq!(again.server("http://b:2").project.as_deref(), Some("p2"));
        assert_eq!(again.server("http://b:2").current_discussion(), None);
    }

    #[test]
    fn each_project_keeps_its_own_current_discussion() {
        let mut s = ServerState {
            project: Some("p1".into()),
            ..ServerState::default()
        };
        s.discussions.insert("p1".into(), "d1".into());
        s.discussions.insert("p2".into(), "d2".into());
        assert_eq!(s.current_discussion(), Some("d1"));
        assert_eq!(s.discussion_of("p2"), Some("d2"));
        s.forget_discussion("d2");
        assert_eq!(s.discussion_of("p2"), None);
        s.forget_project("p1");
        assert_eq!((s.project.as_deref(), s.current_discussion()), (None, None));
    }

    #[test]
    fn a_file_from_before_per_project_discussions_is_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = State::path_in(dir.path());
        std::fs::write(
            &path,
            "[servers.\"http://a:1\"]\nproject = \"p1\"\ndiscussion = \"d1\"\n",
        )
        .expect("write");
        let state = State::load(path).expect("loads");
        assert_eq!(state.server("http://a:1").current_discussion(), Some("d1"));
    }

    #[test]
    fn a_damaged_file_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = State::path_in(dir.path());
        std::fs::write(&path, "servers = 3").expect("write");
        let err = State::load(path).expect_err("damaged");
        assert!(err.to_string().contains("delete it"), "{err}");
    }
}
