//! The runs being shown in each chat. A run is rendered by a task of its
//! own, so that a chat's next command (`/stop` above all) is handled while
//! the models are still streaming. Runs of one chat are shown one after the
//! other: a run asked for while another is still going waits for it (a
//! `/next` typed as a round ends just works).
//!
//! When the bot stops, [`Runs::wind_down`] lets the runs being shown end
//! within a grace period, then has them give their answers a last edit.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use teloxide::types::ChatId;
use tokio::task::AbortHandle;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Most runs that may wait in one chat.
const MAX_QUEUED: usize = 3;

#[derive(Default)]
struct ChatRuns {
    /// Held by the run being shown; waiting runs queue on it (fairly).
    turn: Arc<tokio::sync::Mutex<()>>,
    /// What the run being shown is doing, and its id.
    running: Option<(u64, String)>,
    /// Runs waiting for their turn.
    queued: usize,
    tasks: Vec<AbortHandle>,
}

/// How a run was started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// It is being shown now.
    Now,
    /// It waits for the run being shown, which is doing this.
    Queued(String),
}

/// How long runs told to pause get to make their last edits before they
/// are dropped.
const LAST_EDITS_LIMIT: Duration = Duration::from_secs(5);

/// The runs of each chat.
#[derive(Clone, Default)]
pub struct Runs {
    chats: Arc<Mutex<HashMap<ChatId, ChatRuns>>>,
    next_id: Arc<AtomicU64>,
    /// Every run task, to wait for them when the bot stops.
    tasks: TaskTracker,
    /// Cancelled when the bot stops: runs still waiting for their turn give up.
    closing: CancellationToken,
    /// Cancelled when the grace period is over: runs being shown pause.
    pause: CancellationToken,
}

impl Runs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ChatId, ChatRuns>> {
        self.chats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What the chat's run is doing, and how many wait, if one is going.
    #[must_use]
    pub fn current(&self, chat: ChatId) -> Option<(String, usize)> {
        let chats = self.lock();
        let runs = chats.get(&chat)?;
        let (_, what) = runs.running.as_ref()?;
        Some((what.clone(), runs.queued))
    }

    /// Cancelled when the bot stops and the runs shown should pause.
    #[must_use]
    pub fn pause_token(&self) -> CancellationToken {
        self.pause.clone()
    }

    /// Shows a run in `chat`: now, or after the runs before it. A run should
    /// end soon after [`Runs::pause_token`] is cancelled.
    ///
    /// # Errors
    /// Too many runs already wait in this chat (or the bot is stopping);
    /// the error says what the current one is doing.
    pub fn start<F>(&self, chat: ChatId, what: &str, run: F) -> Result<Started, String>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut chats = self.lock();
        let runs = chats.entry(chat).or_default();
        if self.closing.is_cancelled() {
            return Err("the bot is stopping".to_owned());
        }
        let busy = runs.running.is_some() || runs.queued > 0;
        if runs.queued >= MAX_QUEUED {
            return Err(runs
                .running
                .as_ref()
                .map(|(_, w)| w.clone())
                .unwrap_or_default());
        }
        let started = match &runs.running {
            Some((_, going)) if busy => Started::Queued(going.clone()),
            _ if busy => Started::Queued("another run".to_owned()),
            _ => Started::Now,
        };
        runs.queued += 1;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let turn = runs.turn.clone();
        let registry = self.clone();
        let what = what.to_owned();
        let closing = self.closing.clone();
        let task = self.tasks.spawn(async move {
            // A run whose turn has come is shown; one still waiting when
            // the bot stops is dropped.
            let _turn = match turn.clone().try_lock_owned() {
                Ok(turn) => turn,
                Err(_) => tokio::select! {
                    biased;
                    () = closing.cancelled() => return,
                    turn = turn.lock_owned() => turn,
                },
            };
            registry.update(chat, |runs| {
                runs.queued = runs.queued.saturating_sub(1);
                runs.running = Some((id, what));
            });
            run.await;
            registry.update(chat, |runs| {
                if runs.running.as_ref().is_some_and(|(r, _)| *r == id) {
                    runs.running = None;
                }
            });
        });
        runs.tasks.retain(|t| !t.is_finished());
        runs.tasks.push(task.abort_handle());
        Ok(started)
    }

    fn update(&self, chat: ChatId, change: impl FnOnce(&mut ChatRuns)) {
        if let Some(runs) = self.lock().get_mut(&chat) {
            change(runs);
        }
    }

    /// Stops showing runs when the bot stops: runs waiting for their turn
    /// are dropped, runs being shown get `grace` to end, then are told to
    /// pause (each answer still coming gets a last edit) and get a few
    /// seconds more for those edits. The runs go on on the server.
    pub async fn wind_down(&self, grace: Duration) {
        self.closing.cancel();
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait()).await.is_ok() {
            return;
        }
        tracing::info!(?grace, "answers still coming: pausing them for a restart");
        self.pause.cancel();
        if tokio::time::timeout(LAST_EDITS_LIMIT, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("some answers did not get their last edit in time");
            self.abort_all();
        }
    }

    /// Stops showing every run (the runs themselves go on on the server).
    pub fn abort_all(&self) {
        let mut chats = self.lock();
        for (_, runs) in chats.drain() {
            for task in runs.tasks {
                task.abort();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn settle(runs: &Runs, chat: ChatId, expected: Option<&str>) {
        for _ in 0..200 {
            if runs.current(chat).map(|(w, _)| w).as_deref() == expected {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("expected {expected:?}, have {:?}", runs.current(chat));
    }

    #[tokio::test]
    async fn runs_of_a_chat_take_turns_and_other_chats_do_not_wait() {
        let runs = Runs::default();
        let (first_done, first_wait) = tokio::sync::oneshot::channel::<()>();
        let (second_ran, mut second_seen) = tokio::sync::oneshot::channel::<()>();
        let started = runs.start(ChatId(1), "open", async move {
            let _ = first_wait.await;
        });
        assert_eq!(started, Ok(Started::Now));
        settle(&runs, ChatId(1), Some("open")).await;

        let queued = runs.start(ChatId(1), "next", async move {
            let _ = second_ran.send(());
        });
        assert_eq!(queued, Ok(Started::Queued("open".to_owned())));
        assert_eq!(
            runs.start(ChatId(2), "other", std::future::pending()),
            Ok(Started::Now)
        );
        tokio::task::yield_now().await;
        assert!(
            second_seen.try_recv().is_err(),
            "the second waits for the first"
        );

        first_done.send(()).expect("first run waiting");
        second_seen.await.expect("the second ran after the first");
        settle(&runs, ChatId(1), None).await;
        runs.abort_all();
        assert_eq!(runs.current(ChatId(2)), None);
    }

    #[tokio::test]
    async fn the_queue_is_bounded() {
        let runs = Runs::default();
        runs.start(ChatId(1), "long", std::future::pending())
            .expect("first");
        settle(&runs, ChatId(1), Some("long")).await;
        for _ in 0..MAX_QUEUED {
            runs.start(ChatId(1), "more", async {}).expect("queued");
        }
        assert_eq!(
            runs.start(ChatId(1), "too many", async {}),
            Err("long".to_owned())
        );
        runs.abort_all();
    }

    #[tokio::test(start_paused = true)]
    async fn winding_down_waits_for_the_grace_then_pauses_and_drops_waiting_runs() {
        let runs = Runs::default();
        let pause = runs.pause_token();
        let (paused, mut saw_pause) = tokio::sync::oneshot::channel::<()>();
        runs.start(ChatId(1), "long", async move {
            pause.cancelled().await;
            let _ = paused.send(());
        })
        .expect("first");
        settle(&runs, ChatId(1), Some("long")).await;
        let (queued_ran, mut queued_seen) = tokio::sync::oneshot::channel::<()>();
        runs.start(ChatId(1), "queued", async move {
            let _ = queued_ran.send(());
        })
        .expect("queued");

        let start = tokio::time::Instant::now();
        runs.wind_down(Duration::from_secs(3)).await;
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(3),
            "the grace, no more"
        );
        assert!(saw_pause.try_recv().is_ok(), "the run was told to pause");
        assert!(
            queued_seen.try_recv().is_err(),
            "a run still waiting is not started"
        );
        assert!(
            runs.start(ChatId(2), "late", async {}).is_err(),
            "nothing new starts"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn winding_down_ends_as_soon_as_the_runs_do() {
        let runs = Runs::default();
        runs.start(
            ChatId(1),
            "short",
            tokio::time::sleep(Duration::from_secs(1)),
        )
        .expect("start");
        let start = tokio::time::Instant::now();
        runs.wind_down(Duration::from_secs(10)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        assert!(!runs.pause_token().is_cancelled(), "nothing left to pause");
    }
}
