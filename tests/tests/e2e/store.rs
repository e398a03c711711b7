//! The store's one write path, on both backends: every write is a command
//! of the writer, queue order is commit order, and the writes someone waits
//! for report what really happened.

use moai_server::domain::{
    DiscussionKind, DiscussionStatus, MessageRole, MessageStatus, ModelList, ProjectName, RoundMode,
};
use moai_server::store::{
    BeginRun, DiscussionRecord, MessageRecord, NewProject, ProjectRecord, Store, StoreError,
    StoredEvent, now_ms,
};
use moai_tests::server::{Backend, fresh_postgres_database};

async fn store_on(backend: Backend, dir: &tempfile::TempDir) -> Store {
    let url = match backend {
        Backend::Sqlite => Store::default_sqlite_url(dir.path()).expect("sqlite url"),
        Backend::Postgres => fresh_postgres_database().await,
    };
    Store::connect(&url).await.expect("connect")
}

fn new_project(name: &str) -> NewProject {
    NewProject {
        name: ProjectName::parse(name).expect("name"),
        models: ModelList::parse(&["a/one"], 4).expect("models"),
        system_prompt: String::new(),
        summarizer_model: String::new(),
        fallbacks: Default::default(),
    }
}

/// A RUNNING discussion held by the run `token`.
async fn running_discussion(store: &Store, project: &ProjectRecord, token: &str) -> String {
    let now = now_ms();
    let d = DiscussionRecord {
        id: uuid::Uuid::now_v7().to_string(),
        project_id: project.id.clone(),
        owner: project.owner.clone(),
        kind: DiscussionKind::Open,
        question: "Q".into(),
        status: DiscussionStatus::Running,
        create_time: now,
        update_time: now,
    };
    store
        .create_discussion(&d, now + 30_000, token)
        .await
        .expect("create discussion");
    d.id
}

fn streaming(discussion_id: &str, content: &str) -> MessageRecord {
    MessageRecord {
        id: uuid::Uuid::now_v7().to_string(),
        discussion_id: discussion_id.into(),
        round: 1,
        position: 0,
        role: MessageRole::Model,
        model: "a/one".into(),
        content: content.into(),
        status: MessageStatus::Streaming,
        error: String::new(),
        prompt_tokens: 0,
        completion_tokens: 0,
        cost_usd: 0.0,
        latency_ms: 0,
        create_time: now_ms(),
        author_name: String::new(),
        failure_reason: None,
        answered_by: String::new(),
        reasoning: String::new(),
        queue_ms: 0,
    }
}

fn event(discussion_id: &str, seq: u64) -> StoredEvent {
    StoredEvent {
        discussion_id: discussion_id.into(),
        seq,
        time: now_ms(),
        payload: vec![u8::try_from(seq).unwrap_or(0)],
    }
}

async fn status(store: &Store, owner: &str, id: &str) -> DiscussionStatus {
    store
        .get_discussion(owner, id)
        .await
        .expect("read")
        .expect("discussion")
        .status
}

async fn an_acknowledged_write_is_stored_after_everything_queued_before_it(backend: Backend) {
    let dir = tempfile::tempdir().expect("dir");
    let store = store_on(backend, &dir).await;
    let project = store
        .create_project("alice", &new_project("queue"))
        .await
        .expect("project");
    let id = running_discussion(&store, &project, "run-a").await;

    // Writes nobody waits for, then one that is acknowledged.
    store.create_round(&id, 1, RoundMode::Parallel).await;
    let message = streaming(&id, "so far");
    store.save_streaming(message.clone()).await;
    store.append_event(event(&id, 1)).await;
    store.append_event(event(&id, 2)).await;
    let ended = store
        .end_run(&id, DiscussionStatus::Idle, "run-a")
        .await
        .expect("end run");

    assert!(ended, "the run held its discussion");
    let rounds = store.load_rounds(&id).await.expect("rounds");
    assert_eq!(rounds.len(), 1);
    assert_eq!(rounds[0].messages.len(), 1, "the streaming row is there");
    assert_eq!(rounds[0].messages[0].content, "so far");
    assert_eq!(rounds[0].messages[0].status, MessageStatus::Streaming);
    assert_eq!(store.last_seq(&id).await.expect("seq"), 2);
    assert_eq!(status(&store, "alice", &id).await, DiscussionStatus::Idle);
}

async fn a_run_learns_when_it_no_longer_holds_its_discussion(backend: Backend) {
    let dir = tempfile::tempdir().expect("dir");
    let store = store_on(backend, &dir).await;
    let project = store
        .create_project("alice", &new_project("holds"))
        .await
        .expect("project");
    let id = running_discussion(&store, &project, "run-a").await;

    let renewed = store.extend_lease(&id, now_ms() + 30_000, "run-a").await;
    let by_other = store.extend_lease(&id, now_ms() + 30_000, "run-b").await;
    assert_eq!((renewed.ok(), by_other.ok()), (Some(true), Some(false)));

    store.mark_stopped(&id).await.expect("stop");
    let ended = store
        .end_run(&id, DiscussionStatus::Idle, "run-a")
        .await
        .expect("end run");
    assert!(!ended, "a stopped discussion is not the run's to end");
    assert_eq!(
        status(&store, "alice", &id).await,
        DiscussionStatus::Stopped
    );
    let lease = store.extend_lease(&id, now_ms() + 30_000, "run-a").await;
    assert_eq!(lease.ok(), Some(false), "nor to renew");
    let begun = store.begin_run(&id, now_ms() + 30_000, "run-c").await;
    assert_eq!(begun.ok(), Some(BeginRun::Stopped));
}

async fn a_taken_project_name_is_a_conflict(backend: Backend) {
    let dir = tempfile::tempdir().expect("dir");
    let store = store_on(backend, &dir).await;
    store
        .create_project("alice", &new_project("one"))
        .await
        .expect("first");
    let again = store.create_project("alice", &new_project("one")).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let mut two = store
        .create_project("alice", &new_project("two"))
        .await
        .expect("second");
    two.name = "one".into();
    let renamed = store.update_project(&two).await;
    assert!(
        matches!(renamed, Err(StoreError::Conflict(_))),
        "{renamed:?}"
    );
    let names: Vec<String> = store
        .list_projects("alice", 10, None)
        .await
        .expect("list")
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["one", "two"]);
    // Another owner may use the name.
    assert!(
        store
            .create_project("bob", &new_project("one"))
            .await
            .is_ok()
    );
}

fn interrupted(discussion_id: &str, last_seq: u64, time: i64) -> StoredEvent {
    StoredEvent {
        discussion_id: discussion_id.to_owned(),
        seq: last_seq + 100,
        time,
        payload: b"interrupted".to_vec(),
    }
}

async fn recovery_interrupts_the_run_its_answers_and_says_so(backend: Backend) {
    let dir = tempfile::tempdir().expect("dir");
    let store = store_on(backend, &dir).await;
    let project = store
        .create_project("alice", &new_project("recover"))
        .await
        .expect("project");
    let id = running_discussion(&store, &project, "run-a").await;
    store.create_round(&id, 1, RoundMode::Parallel).await;
    store.save_streaming(streaming(&id, "half an ans")).await;
    store.append_event(event(&id, 7)).await;

    let recovered = store
        .recover_interrupted(true, interrupted)
        .await
        .expect("recover");

    assert_eq!(recovered, std::slice::from_ref(&id));
    assert_eq!(
        status(&store, "alice", &id).await,
        DiscussionStatus::Interrupted
    );
    let rounds = store.load_rounds(&id).await.expect("rounds");
    let m = &rounds[0].messages[0];
    assert_eq!(
        (m.status, m.content.as_str()),
        (MessageStatus::Interrupted, "half an ans")
    );
    assert_eq!(store.last_seq(&id).await.expect("seq"), 107);
    let begun = store.begin_run(&id, now_ms() + 30_000, "run-b").await;
    assert_eq!(begun.ok(), Some(BeginRun::Started), "it can be continued");
}

crate::on_both_backends!(
    acknowledged_after_queued,
    an_acknowledged_write_is_stored_after_everything_queued_before_it
);
crate::on_both_backends!(
    holding_the_discussion,
    a_run_learns_when_it_no_longer_holds_its_discussion
);
crate::on_both_backends!(project_name_conflict, a_taken_project_name_is_a_conflict);
crate::on_both_backends!(
    recovery,
    recovery_interrupts_the_run_its_answers_and_says_so
);
