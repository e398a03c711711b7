//! The runs being shown in each chat. A run is rendered by a task of its
//! own, so that a chat's next command (`/stop` above all) is handled while
//! the models are still streaming.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

use teloxide::types::ChatId;
use tokio::task::AbortHandle;

struct Running {
    id: u64,
    what: String,
    handle: AbortHandle,
}

/// The run going on in each chat (at most one per chat).
#[derive(Clone, Default)]
pub struct Runs {
    chats: Arc<Mutex<HashMap<ChatId, Running>>>,
    next_id: Arc<AtomicU64>,
}

impl Runs {
    /// What the chat's run is doing, if one is going.
    #[must_use]
    pub fn current(&self, chat: ChatId) -> Option<String> {
        let chats = self.chats.lock().unwrap_or_else(PoisonError::into_inner);
        chats.get(&chat).map(|r| r.what.clone())
    }

    /// Starts rendering a run in `chat`, unless one is already going there;
    /// then returns what that one is doing.
    ///
    /// # Errors
    /// The description of the run already going.
    pub fn start<F>(&self, chat: ChatId, what: &str, run: F) -> Result<(), String>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut chats = self.chats.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(running) = chats.get(&chat) {
            return Err(running.what.clone());
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let registry = self.chats.clone();
        let task = tokio::spawn(async move {
            run.await;
            let mut chats = registry.lock().unwrap_or_else(PoisonError::into_inner);
            if chats.get(&chat).is_some_and(|r| r.id == id) {
                chats.remove(&chat);
            }
        });
        chats.insert(
            chat,
            Running {
                id,
                what: what.to_owned(),
                handle: task.abort_handle(),
            },
        );
        Ok(())
    }

    /// Stops rendering every run (the runs themselves go on on the server).
    pub fn abort_all(&self) {
        let mut chats = self.chats.lock().unwrap_or_else(PoisonError::into_inner);
        for (_, running) in chats.drain() {
            running.handle.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_run_per_chat_and_the_slot_frees_when_it_ends() {
        let runs = Runs::default();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        runs.start(ChatId(1), "open", async move {
            let _ = rx.await;
        })
        .expect("first run starts");
        assert_eq!(
            runs.start(ChatId(1), "next", async {}),
            Err("open".to_owned())
        );
        runs.start(ChatId(2), "next", std::future::pending())
            .expect("another chat is free");
        assert_eq!(runs.current(ChatId(1)).as_deref(), Some("open"));

        tx.send(()).expect("run waiting");
        for _ in 0..100 {
            if runs.current(ChatId(1)).is_none() {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(runs.current(ChatId(1)), None);
        runs.abort_all();
        assert_eq!(runs.current(ChatId(2)), None);
    }
}
