//! Following a run's event stream: render every event, animate while waiting,
//! detach on Ctrl-C or SIGTERM (the run goes on on the server), and decide the
//! outcome.

use std::time::Duration;

use moai_proto::EventResponse;
use moai_proto::v1::discussion_event::Payload;
use moai_proto::v1::{DiscussionEvent, WatchDiscussionRequest, WatchDiscussionResponse};
use tonic::{Code, Status, Streaming};

use crate::args::DEFAULT_SERVER;
use crate::errors::{CliError, ExitCode};
use crate::render::progress::Progress;
use crate::session::Session;

/// How often the live view redraws while waiting.
const TICK: Duration = Duration::from_millis(100);

/// Follows `stream` to its end (the run is idle) or until Ctrl-C or SIGTERM,
/// remembering a new discussion as its project's current one.
///
/// # Errors
/// The stream's error status, mapped by `errors`; a failed write.
pub async fn follow<T: EventResponse>(
    session: &mut Session,
    stream: Streaming<T>,
    errors: impl Fn(Status) -> CliError,
) -> Result<ExitCode, CliError> {
    follow_from(session, stream, errors, Progress::new()).await
}

/// Like [`follow`], on top of what `progress` already holds (the earlier
/// part of the run a `watch --after` does not show again, but counts).
///
/// # Errors
/// As [`follow`].
#[tracing::instrument(skip_all, fields(command = session.command))]
pub async fn follow_from<T: EventResponse>(
    session: &mut Session,
    stream: Streaming<T>,
    errors: impl Fn(Status) -> CliError,
    mut progress: Progress,
) -> Result<ExitCode, CliError> {
    let mut stream = Events::Call(stream);
    let mut reattached = 0;
    let mut renderer = session.out.renderer();
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let detach = detach_signal();
    tokio::pin!(detach);
    let write = |e: std::io::Error| CliError::io("cannot write the output", e);
    loop {
        tokio::select! {
            () = &mut detach => {
                renderer.detach(&progress).map_err(write)?;
                detached_hint(session, &progress);
                return Ok(ExitCode::Detached);
            }
            _ = ticker.tick() => renderer.tick(&progress).map_err(write)?,
            item = stream.next() => match item {
                Ok(Some(Some(event))) => {
                    if let Some(Payload::DiscussionStarted(started)) = &event.payload
                        && let Some(d) = &started.discussion
                    {
                        session.remember_or_warn(|s| {
                            s.discussions.insert(d.project_id.clone(), d.id.clone());
                        });
                    }
                    let touched = progress.apply(&event);
                    renderer.event(&event, &progress, touched).map_err(write)?;
                }
                Ok(Some(None)) => {}
                Ok(None) => break,
                Err(status) if fell_behind(&status, &progress) && reattached < MAX_REATTACH => {
                    reattached += 1;
                    tracing::info!(discussion = %progress.discussion_id, after_seq = progress.last_seq, "fell behind the run; re-attaching");
                    stream = match watch_from(session, &progress).await {
                        Ok(s) => s,
                        Err(status) => {
                            renderer.detach(&progress).map_err(write)?;
                            return Err(broken(session, &progress, status, errors));
                        }
                    };
                }
                Err(status) => {
                    renderer.detach(&progress).map_err(write)?;
                    return Err(broken(session, &progress, status, errors));
                }
            }
        }
    }
    progress.left_today = left_today(session).await;
    renderer.finish(&progress).map_err(write)?;
    tracing::debug!(discussion = %progress.discussion_id, last_seq = progress.last_seq, "the run is idle");
    outcome(&progress)
}

/// Resolves on Ctrl-C, or on SIGTERM (how service managers and `kill` stop a
/// program): both detach, leaving the run to the server.
async fn detach_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Most times one command re-attaches after falling behind.
const MAX_REATTACH: u32 = 5;

/// The stream being followed: the command's own, or a re-attached watch.
enum Events<T> {
    Call(Streaming<T>),
    Watch(Streaming<WatchDiscussionResponse>),
}

impl<T: EventResponse> Events<T> {
    /// The next message's event (`None` inside for a message without one);
    /// `None` when the stream ended.
    async fn next(&mut self) -> Result<Option<Option<DiscussionEvent>>, Status> {
        Ok(match self {
            Events::Call(s) => s.message().await?.map(EventResponse::into_event),
            Events::Watch(s) => s.message().await?.map(EventResponse::into_event),
        })
    }
}

/// The server let this client go for reading too slowly (a busy terminal, a
/// paused pipe); the run goes on, so the CLI picks up where it was.
/// What is left of the caller's daily budget, for the footer; `None` when
/// unlimited or when the server cannot say (the footer just leaves it out).
async fn left_today(session: &mut Session) -> Option<f64> {
    let client = session.client().await.ok()?;
    let usage = client
        .usage
        .clone()
        .get_usage(moai_proto::v1::GetUsageRequest::default())
        .await
        .ok()?
        .into_inner()
        .usages
        .into_iter()
        .next()?;
    usage
        .daily_budget_usd
        .map(|limit| (limit - usage.spent_today_usd).max(0.0))
}

fn fell_behind(status: &Status, progress: &Progress) -> bool {
    status.code() == Code::ResourceExhausted && !progress.discussion_id.is_empty()
}

/// Re-attaches to the discussion after the last event seen.
async fn watch_from<T>(session: &mut Session, progress: &Progress) -> Result<Events<T>, Status> {
    let client = session
        .client()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let stream = client
        .discussions
        .clone()
        .watch_discussion(WatchDiscussionRequest {
            discussion_id: progress.discussion_id.clone(),
            after_seq: progress.last_seq,
        })
        .await?
        .into_inner();
    Ok(Events::Watch(stream))
}

/// The error of a stream that failed: a lost connection after the run began
/// says how to re-attach; anything else is the server's answer.
fn broken(
    session: &Session,
    progress: &Progress,
    status: Status,
    errors: impl Fn(Status) -> CliError,
) -> CliError {
    let lost = matches!(
        status.code(),
        Code::Unavailable | Code::Unknown | Code::Cancelled | Code::DeadlineExceeded
    );
    if lost && !progress.discussion_id.is_empty() {
        let reason = crate::errors::one_line(status.message());
        CliError::StreamLost {
            server: session.server.clone(),
            server_flag: server_flag(session),
            reason: if reason.is_empty() {
                "stream closed".into()
            } else {
                reason
            },
            discussion: progress.discussion_id.clone(),
            seq: progress.last_seq,
        }
    } else {
        errors(status)
    }
}

/// Exit 0 when any model answered (or nothing was asked); exit 9 when every
/// model of the run failed.
fn outcome(progress: &Progress) -> Result<ExitCode, CliError> {
    let (answered, failed) = progress.outcome();
    if answered.is_empty() && !failed.is_empty() {
        let reasons: Vec<String> = failed
            .iter()
            .map(|e| {
                format!(
                    "{} ({})",
                    e.model,
                    e.error.as_deref().unwrap_or("no reason given")
                )
            })
            .collect();
        return Err(CliError::AllFailed(reasons.join("; ")));
    }
    Ok(ExitCode::Success)
}

/// ` --server <URL>` when the server is not the default one, so that a printed
/// command works in another shell too.
fn server_flag(session: &Session) -> String {
    if session.server == DEFAULT_SERVER {
        String::new()
    } else {
        format!(" --server {}", session.server)
    }
}

/// What to do after a detach, one short line each, so that it fits a narrow
/// terminal and every command can be copied whole.
fn detached_hint(session: &Session, progress: &Progress) {
    for line in hint_lines(session, progress) {
        session.out.note(&line);
    }
}

fn hint_lines(session: &Session, progress: &Progress) -> [String; 3] {
    let id = if progress.discussion_id.is_empty() {
        String::new()
    } else {
        format!(" {}", progress.discussion_id)
    };
    [
        "Detached; the run goes on on the server.".to_string(),
        format!(
            "Re-attach: moai watch{id} --after {}{}",
            progress.last_seq,
            server_flag(session)
        ),
        format!("Cancel: moai stop{id}{}", server_flag(session)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use moai_proto::v1::MessageFailed;

    fn failed(model: &str) -> DiscussionEvent {
        DiscussionEvent {
            payload: Some(Payload::MessageFailed(MessageFailed {
                message_id: model.into(),
                model: model.into(),
                error: "HTTP 500".into(),
                content: String::new(),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn only_a_run_in_which_every_model_failed_is_an_error() {
        let mut progress = Progress::new();
        assert_eq!(
            outcome(&progress).ok(),
            Some(ExitCode::Success),
            "nothing asked"
        );
        progress.apply(&failed("v/a"));
        let err = outcome(&progress).expect_err("all failed");
        assert_eq!(err.exit_code(), ExitCode::AllFailed);
        assert!(err.to_string().contains("v/a (HTTP 500)"), "{err}");
    }
}
