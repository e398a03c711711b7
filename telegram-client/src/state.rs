//! Per-chat state (the current project and discussion), kept in a JSON file
//! so that it survives a restart of the bot.
//!
//! [`FileStorage`] is a teloxide dialogue [`Storage`]; it also offers an
//! atomic [`FileStorage::modify`], because a run streaming in the background
//! and the handler of the next command may both change a chat's state.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use teloxide::{dispatching::dialogue::Storage, types::ChatId};
use tokio::sync::Mutex;

use crate::error::StateError;

/// What a chat is working on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatState {
    /// The current project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<ProjectRef>,
    /// The current discussion (of the current project).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discussion_id: Option<String>,
    /// Answers being shown, by moai message id: what a restarted bot
    /// needs to finish them in the messages they started in.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub live: BTreeMap<String, LiveAnswer>,
    /// The discussion of each recent answer message (Telegram message id →
    /// discussion id), so a reply to an answer speaks in that discussion.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub answers: BTreeMap<i32, String>,
    /// The group this chat was before Telegram made it a supergroup: the
    /// group's projects belong to that first id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrated_from: Option<i64>,
}

/// Most answer messages a chat remembers the discussion of.
const MAX_REMEMBERED_ANSWERS: usize = 200;

/// An answer whose final text is not yet in the chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveAnswer {
    /// The discussion it belongs to.
    pub discussion_id: String,
    /// The Telegram user who asked for the run (whose access is checked
    /// again after a restart).
    pub user: u64,
    /// The Telegram messages showing it, in order.
    pub messages: Vec<i32>,
}

/// Keeps one answer's [`LiveAnswer`] entry up to date.
#[derive(Debug, Clone)]
pub struct Tracker {
    /// Where chats' states are kept.
    pub store: Arc<FileStorage>,
    /// The chat the answer is shown in.
    pub chat: ChatId,
    /// The moai message id of the answer.
    pub message_id: String,
    /// The discussion it belongs to.
    pub discussion_id: String,
    /// The Telegram user who asked for the run.
    pub user: u64,
}

impl Tracker {
    /// Records the Telegram messages now showing the answer.
    pub async fn save(&self, messages: Vec<i32>) {
        let entry = LiveAnswer {
            discussion_id: self.discussion_id.clone(),
            user: self.user,
            messages,
        };
        let result = self
            .store
            .modify(self.chat, |state| {
                for id in &entry.messages {
                    state.remember_answer(*id, &self.discussion_id);
                }
                state.live.insert(self.message_id.clone(), entry);
            })
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not record a live answer");
        }
    }

    /// The answer is complete in the chat: nothing left to finish.
    pub async fn forget(&self) {
        let result = self
            .store
            .modify(self.chat, |state| {
                state.live.remove(&self.message_id);
            })
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not clear a live answer");
        }
    }
}

/// A project as remembered by a chat: its id, and its name for messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectRef {
    /// The project's id.
    pub id: String,
    /// Its name when it was selected.
    pub name: String,
}

impl ChatState {
    /// Selects a project (and forgets the discussion of another one).
    pub fn select_project(&mut self, id: &str, name: &str) {
        if self.project.as_ref().is_none_or(|p| p.id != id) {
            self.discussion_id = None;
        }
        self.project = Some(ProjectRef {
            id: id.to_owned(),
            name: name.to_owned(),
        });
    }

    /// Forgets the current project and discussion (answers still being shown
    /// are kept, so they can be finished).
    pub fn forget_project(&mut self) {
        self.project = None;
        self.discussion_id = None;
    }

    /// The current project's id.
    #[must_use]
    pub fn project_id(&self) -> Option<&str> {
        self.project.as_ref().map(|p| p.id.as_str())
    }

    /// Remembers that a Telegram message shows an answer of this discussion
    /// (the oldest are forgotten past a bound).
    pub fn remember_answer(&mut self, message: i32, discussion_id: &str) {
        self.answers.insert(message, discussion_id.to_owned());
        while self.answers.len() > MAX_REMEMBERED_ANSWERS {
            self.answers.pop_first();
        }
    }
}

/// The state of every chat, in a JSON file rewritten atomically on change.
#[derive(Debug)]
pub struct FileStorage {
    path: PathBuf,
    chats: Mutex<BTreeMap<i64, ChatState>>,
}

impl FileStorage {
    /// Opens the state file, creating it (and its directory) when missing.
    ///
    /// # Errors
    /// The file cannot be read or created, or holds something else.
    pub async fn open(path: impl AsRef<Path>) -> Result<Arc<Self>, StateError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| StateError::Io {
            path: path.display().to_string(),
            source,
        };
        let chats = match tokio::fs::read(&path).await {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => BTreeMap::new(),
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| StateError::Corrupt {
                path: path.display().to_string(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    tokio::fs::create_dir_all(dir).await.map_err(io)?;
                }
                BTreeMap::new()
            }
            Err(e) => return Err(io(e)),
        };
        let storage = Arc::new(FileStorage {
            path,
            chats: Mutex::new(chats),
        });
        // Fail at start-up, not at the first command, if the file is not writable.
        storage.persist(&*storage.chats.lock().await).await?;
        Ok(storage)
    }

    /// Where the state is kept.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A chat's state (the default for a chat never seen).
    pub async fn get(&self, chat: ChatId) -> ChatState {
        self.chats
            .lock()
            .await
            .get(&chat.0)
            .cloned()
            .unwrap_or_default()
    }

    /// Every chat with a state, and that state.
    pub async fn all(&self) -> Vec<(ChatId, ChatState)> {
        let chats = self.chats.lock().await;
        chats
            .iter()
            .map(|(id, state)| (ChatId(*id), state.clone()))
            .collect()
    }

    /// Changes a chat's state atomically and saves it; returns the new state.
    ///
    /// # Errors
    /// The state file cannot be written.
    pub async fn modify(
        &self,
        chat: ChatId,
        change: impl FnOnce(&mut ChatState),
    ) -> Result<ChatState, StateError> {
        let mut chats = self.chats.lock().await;
        let state = chats.entry(chat.0).or_default();
        change(state);
        let state = state.clone();
        if state == ChatState::default() {
            chats.remove(&chat.0);
        }
        self.persist(&chats).await?;
        Ok(state)
    }

    /// Moves a group's state to the supergroup Telegram turned it into,
    /// remembering the group's first id (whose projects the chat keeps).
    /// Telegram announces a migration in both chats, so a second call for
    /// the same move changes nothing.
    ///
    /// # Errors
    /// The state file cannot be written.
    pub async fn migrate(&self, from: ChatId, to: ChatId) -> Result<(), StateError> {
        let mut chats = self.chats.lock().await;
        if from == to || chats.get(&to.0).is_some_and(|s| s.migrated_from.is_some()) {
            return Ok(());
        }
        let mut state = chats.remove(&from.0).unwrap_or_default();
        state.migrated_from = Some(state.migrated_from.unwrap_or(from.0));
        // The group's messages stay behind: answers shown there cannot be
        // finished or replied to in the supergroup.
        state.live.clear();
        state.answers.clear();
        chats.insert(to.0, state);
        self.persist(&chats).await
    }

    /// Writes the state file as it is now.
    ///
    /// # Errors
    /// The state file cannot be written.
    pub async fn save(&self) -> Result<(), StateError> {
        self.persist(&*self.chats.lock().await).await
    }

    async fn persist(&self, chats: &BTreeMap<i64, ChatState>) -> Result<(), StateError> {
        let io = |source| StateError::Io {
            path: self.path.display().to_string(),
            source,
        };
        let json = serde_json::to_vec_pretty(chats).map_err(|source| StateError::Corrupt {
            path: self.path.display().to_string(),
            source,
        })?;
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        tokio::fs::write(&tmp, json).await.map_err(io)?;
        tokio::fs::rename(&tmp, &self.path).await.map_err(io)
    }
}

impl Storage<ChatState> for FileStorage {
    type Error = StateError;

    fn remove_dialogue(
        self: Arc<Self>,
        chat_id: ChatId,
    ) -> BoxFuture<'static, Result<(), StateError>> {
        Box::pin(async move {
            self.modify(chat_id, |state| *state = ChatState::default())
                .await
                .map(drop)
        })
    }

    fn update_dialogue(
        self: Arc<Self>,
        chat_id: ChatId,
        dialogue: ChatState,
    ) -> BoxFuture<'static, Result<(), StateError>> {
        Box::pin(async move {
            self.modify(chat_id, |state| *state = dialogue)
                .await
                .map(drop)
        })
    }

    fn get_dialogue(
        self: Arc<Self>,
        chat_id: ChatId,
    ) -> BoxFuture<'static, Result<Option<ChatState>, StateError>> {
        Box::pin(async move { Ok(self.chats.lock().await.get(&chat_id.0).cloned()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn state_survives_reopening() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sub").join("state.json");
        let storage = FileStorage::open(&path).await.expect("open");
        storage
            .modify(ChatId(7), |s| s.select_project("p1", "Alpha"))
            .await
            .expect("modify");
        storage
            .modify(ChatId(7), |s| s.discussion_id = Some("d1".into()))
            .await
            .expect("modify");
        drop(storage);

        let reopened = FileStorage::open(&path).await.expect("reopen");
        let state = reopened.get(ChatId(7)).await;
        assert_eq!(state.project_id(), Some("p1"));
        assert_eq!(state.discussion_id.as_deref(), Some("d1"));
        assert_eq!(reopened.get(ChatId(8)).await, ChatState::default());
    }

    #[tokio::test]
    async fn selecting_another_project_forgets_the_discussion() {
        let mut state = ChatState::default();
        state.select_project("p1", "A");
        state.discussion_id = Some("d".into());
        state.select_project("p1", "A renamed");
        assert!(state.discussion_id.is_some());
        state.select_project("p2", "B");
        assert!(state.discussion_id.is_none());
    }

    #[tokio::test]
    async fn works_as_a_dialogue_storage() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = FileStorage::open(dir.path().join("s.json"))
            .await
            .expect("open");
        let state = ChatState {
            project: None,
            discussion_id: Some("d".into()),
            ..ChatState::default()
        };
        Arc::clone(&storage)
            .update_dialogue(ChatId(1), state.clone())
            .await
            .expect("update");
        assert_eq!(
            Arc::clone(&storage)
                .get_dialogue(ChatId(1))
                .await
                .expect("get"),
            Some(state)
        );
        Arc::clone(&storage)
            .remove_dialogue(ChatId(1))
            .await
            .expect("remove");
        assert_eq!(storage.get_dialogue(ChatId(1)).await.expect("get"), None);
    }

    #[tokio::test]
    async fn a_migrated_group_keeps_its_first_id_and_its_selection() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = FileStorage::open(dir.path().join("s.json"))
            .await
            .expect("open");
        let (group, supergroup) = (ChatId(-500), ChatId(-1_000_000_000_500));
        storage
            .modify(group, |s| s.select_project("p1", "Team"))
            .await
            .expect("modify");
        storage.migrate(group, supergroup).await.expect("migrate");
        storage
            .migrate(group, supergroup)
            .await
            .expect("the second notice");
        let state = storage.get(supergroup).await;
        assert_eq!(state.project_id(), Some("p1"));
        assert_eq!(state.migrated_from, Some(-500));
        assert_eq!(storage.get(group).await, ChatState::default());
    }

    #[test]
    fn remembered_answers_are_bounded() {
        let mut state = ChatState::default();
        for id in 0..(MAX_REMEMBERED_ANSWERS as i32 + 10) {
            state.remember_answer(id, "d");
        }
        assert_eq!(state.answers.len(), MAX_REMEMBERED_ANSWERS);
        assert!(!state.answers.contains_key(&0), "the oldest are forgotten");
    }

    #[tokio::test]
    async fn a_corrupt_file_is_an_error_not_a_reset() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("s.json");
        std::fs::write(&path, "not json").expect("write");
        assert!(matches!(
            FileStorage::open(&path).await,
            Err(StateError::Corrupt { .. })
        ));
    }
}
