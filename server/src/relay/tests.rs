//! The relay against a real Redis (`MOAI_TEST_REDIS_URL`, which `.ci/run`
//! sets; each test uses keys of its own prefix). A test that needs Redis to
//! speak TLS starts its own `redis-server`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use moai_proto::v1::{self, DiscussionEvent, discussion_event::Payload};
use secrecy::SecretString;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::follower::{Fanout, Followed, spawn_follower};
use super::publisher::{RunId, publish_run};
use super::stop::{StopChannel, StopTarget};
use super::{Relay, RelaySettings};
use crate::store::Store;

fn redis_url() -> Option<String> {
    let url = std::env::var("MOAI_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_none() {
        eprintln!("MOAI_TEST_REDIS_URL is not set: relay tests not run here (.ci/run sets it)");
    }
    url
}

/// Polls `check` until it holds, failing after `within` with `what`. (The
/// test kit's `wait::until`, which this crate's unit tests cannot reach.)
async fn until(within: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn settings(url: &str) -> RelaySettings {
    RelaySettings {
        url: SecretString::from(url.to_owned()),
        key_prefix: format!("moai-test:{}:", uuid::Uuid::new_v4().simple()),
        ca_cert: None,
        readers: 2,
    }
}

async fn sqlite_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tmp");
    let url = Store::default_sqlite_url(dir.path()).expect("url");
    (Store::connect(&url).await.expect("store"), dir)
}

fn event(seq: u64, payload: Payload) -> Arc<DiscussionEvent> {
    Arc::new(DiscussionEvent {
        discussion_id: "d".into(),
        seq,
        time: None,
        payload: Some(payload),
    })
}

/// A run's events: started, `deltas` deltas of one message, completed, idle.
fn run_events(first: u64, deltas: u64) -> Vec<Arc<DiscussionEvent>> {
    let mut out = vec![event(
        first,
        Payload::StatusChanged(v1::StatusChanged {
            status: v1::DiscussionStatus::Running as i32,
        }),
    )];
    for i in 0..deltas {
        out.push(event(
            first + 1 + i,
            Payload::MessageDelta(v1::MessageDelta {
                message_id: "m".into(),
                model: "a/b".into(),
                text: format!("w{i} "),
                ..Default::default()
            }),
        ));
    }
    out.push(event(
        first + 1 + deltas,
        Payload::StatusChanged(v1::StatusChanged {
            status: v1::DiscussionStatus::Idle as i32,
        }),
    ));
    out
}

/// A fanout collecting what a follower delivers; `None` marks its close.
struct Collect(mpsc::UnboundedSender<Option<Arc<DiscussionEvent>>>);

impl Fanout for Collect {
    fn deliver(&self, event: Arc<DiscussionEvent>) {
        let _ = self.0.send(Some(event));
    }
    fn close(&self) {
        let _ = self.0.send(None);
    }
}

async fn drain(rx: &mut mpsc::UnboundedReceiver<Option<Arc<DiscussionEvent>>>) -> Vec<u64> {
    let mut seqs = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(Some(e))) => seqs.push(e.seq),
            Ok(Some(None)) | Ok(None) => return seqs,
            Err(_) => panic!("the follower neither delivered nor ended; got {seqs:?}"),
        }
    }
}

#[tokio::test]
async fn a_follower_gets_every_event_of_a_run_once_in_order() {
    let Some(url) = redis_url() else { return };
    let relay = Relay::new(&settings(&url)).expect("relay");
    let (store, _dir) = sqlite_store().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let follower = spawn_follower(
        relay.clone(),
        store,
        Followed {
            discussion_id: "d".into(),
            token: "run-1".into(),
        },
        Arc::new(Collect(tx)),
        CancellationToken::new(),
    );
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let publishing = tokio::spawn(publish_run(
        relay.clone(),
        RunId {
            discussion_id: "d".into(),
            token: "run-1".into(),
            first_seq: 7,
        },
        tokio_stream::wrappers::UnboundedReceiverStream::new(events_rx),
    ));
    let events = run_events(7, 300);
    for (i, e) in events.iter().enumerate() {
        events_tx.send(e.clone()).expect("publisher listens");
        if i % 50 == 0 {
            tokio::task::yield_now().await;
        }
    }
    drop(events_tx);
    let got = drain(&mut rx).await;
    assert_eq!(got, events.iter().map(|e| e.seq).collect::<Vec<_>>());
    assert_eq!(
        follower.base().await,
        Some(6),
        "based before the run's first event"
    );
    publishing.await.expect("publisher ends");
}

#[tokio::test]
async fn a_follower_joining_mid_run_gets_the_run_from_its_start() {
    let Some(url) = redis_url() else { return };
    let relay = Relay::new(&settings(&url)).expect("relay");
    let (store, _dir) = sqlite_store().await;
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let publishing = tokio::spawn(publish_run(
        relay.clone(),
        RunId {
            discussion_id: "d".into(),
            token: "run-1".into(),
            first_seq: 1,
        },
        tokio_stream::wrappers::UnboundedReceiverStream::new(events_rx),
    ));
    let events = run_events(1, 40);
    for e in &events[..20] {
        events_tx.send(e.clone()).expect("publisher listens");
    }
    // Wait until the first half is in the stream.
    let key = relay.keys().events("d");
    let mut conn = relay.conn();
    until(
        Duration::from_secs(5),
        "the first half is published",
        async || {
            let top: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
                .arg(&key)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .query_async(&mut conn)
                .await
                .expect("xrevrange");
            top.ids.first().is_some_and(|r| r.id == "20-0")
        },
    )
    .await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let follower = spawn_follower(
        relay.clone(),
        store,
        Followed {
            discussion_id: "d".into(),
            token: "run-1".into(),
        },
        Arc::new(Collect(tx)),
        CancellationToken::new(),
    );
    assert_eq!(follower.base().await, Some(0));
    for e in &events[20..] {
        events_tx.send(e.clone()).expect("publisher listens");
    }
    drop(events_tx);
    assert_eq!(
        drain(&mut rx).await,
        events.iter().map(|e| e.seq).collect::<Vec<_>>()
    );
    publishing.await.expect("publisher ends");
}

#[tokio::test]
async fn many_followed_discussions_share_a_few_reader_connections() {
    let Some(url) = redis_url() else { return };
    let relay = Relay::new(&settings(&url)).expect("relay");
    let (store, _dir) = sqlite_store().await;
    let mut followers = Vec::new();
    for i in 0..1000 {
        let (tx, rx) = mpsc::unbounded_channel();
        let id = format!("d{i}");
        spawn_follower(
            relay.clone(),
            store.clone(),
            Followed {
                discussion_id: id.clone(),
                token: "run".into(),
            },
            Arc::new(Collect(tx)),
            CancellationToken::new(),
        );
        followers.push((id, rx));
    }
    for (id, _) in &followers {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        for e in run_events(1, 3) {
            let mut e = (*e).clone();
            e.discussion_id = id.clone();
            events_tx.send(Arc::new(e)).expect("open");
        }
        drop(events_tx);
        tokio::spawn(publish_run(
            relay.clone(),
            RunId {
                discussion_id: id.clone(),
                token: "run".into(),
                first_seq: 1,
            },
            tokio_stream::wrappers::UnboundedReceiverStream::new(events_rx),
        ));
    }
    for (id, rx) in &mut followers {
        assert_eq!(drain(rx).await, [1, 2, 3, 4, 5], "discussion {id}");
    }
    assert!(
        relay.readers().connections() <= 2,
        "1000 followed discussions, {} reader connections",
        relay.readers().connections()
    );
}

/// Records the stops a listener delivers.
#[derive(Default)]
struct Runs {
    running: Vec<String>,
    stopped: Mutex<Vec<String>>,
    notify: tokio::sync::Notify,
}

impl StopTarget for Runs {
    fn running(&self) -> Vec<String> {
        self.running.clone()
    }
    fn stop(&self, discussion_id: &str) {
        if self.running.iter().any(|r| r == discussion_id) {
            self.stopped
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(discussion_id.to_owned());
            self.notify.notify_one();
        }
    }
}

async fn wait_stopped(runs: &Runs, within: Duration) -> Duration {
    let start = tokio::time::Instant::now();
    tokio::time::timeout(within, async {
        while runs
            .stopped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
        {
            runs.notify.notified().await;
        }
    })
    .await
    .expect("the stop arrived in time");
    start.elapsed()
}

#[tokio::test]
async fn a_stop_reaches_the_owner_by_pubsub_and_a_missed_one_by_its_key() {
    let Some(url) = redis_url() else { return };
    let relay = Relay::new(&settings(&url)).expect("relay");
    let channel = StopChannel::Redis(relay.clone());
    // Sent before anyone listens: the Pub/Sub message is lost, the key is not.
    channel.send("early").await.expect("send");
    let runs = Arc::new(Runs {
        running: vec!["early".into(), "late".into()],
        ..Default::default()
    });
    let closing = CancellationToken::new();
    let _tasks = channel.listen(runs.clone(), closing.clone());
    let took = wait_stopped(&runs, Duration::from_secs(10)).await;
    eprintln!(
        "missed stop found by its key after {took:?} (checked every {:?})",
        super::stop::CHECK
    );
    // Once the listener is subscribed, a stop published with no key behind it
    // can only arrive through Pub/Sub.
    let mut conn = relay.conn();
    until(
        Duration::from_secs(5),
        "the listener subscribes",
        async || {
            let (_, subscribers): (String, u64) = redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg(relay.keys().stops())
                .query_async(&mut conn)
                .await
                .expect("pubsub numsub");
            subscribers > 0
        },
    )
    .await;
    let sent = tokio::time::Instant::now();
    let _: () = redis::cmd("PUBLISH")
        .arg(relay.keys().stops())
        .arg("late")
        .query_async(&mut conn)
        .await
        .expect("publish");
    tokio::time::timeout(Duration::from_secs(5), async {
        while !runs
            .stopped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|id| id == "late")
        {
            runs.notify.notified().await;
        }
    })
    .await
    .expect("the published stop arrived");
    eprintln!("stop over Pub/Sub arrived after {:?}", sent.elapsed());
    closing.cancel();
}

/// A `redis-server` of the test's own, speaking TLS only, killed on drop.
struct TlsRedis {
    child: std::process::Child,
    port: u16,
    ca: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A private CA and a server certificate for 127.0.0.1, made with rcgen.
fn tls_redis() -> TlsRedis {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let dir = tempfile::tempdir().expect("tmp");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("ca");
    let server_key = KeyPair::generate().expect("key");
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("params")
        .signed_by(&server_key, &ca)
        .expect("server certificate");
    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    let ca_path = write("ca.pem", ca.pem());
    let cert = write("server.pem", server.pem());
    let key = write("server.key", server_key.serialize_pem());
    let port = free_port();
    let child = std::process::Command::new("redis-server")
        .args(["--port", "0", "--bind", "127.0.0.1"])
        .arg("--tls-port")
        .arg(port.to_string())
        .arg("--tls-cert-file")
        .arg(&cert)
        .arg("--tls-key-file")
        .arg(&key)
        .arg("--tls-ca-cert-file")
        .arg(&ca_path)
        .args([
            "--tls-auth-clients",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server runs");
    TlsRedis {
        child,
        port,
        ca: ca_path,
        _dir: dir,
    }
}

#[tokio::test]
async fn rediss_urls_reach_a_tls_redis_verified_with_a_private_ca() {
    if redis_url().is_none() {
        return;
    }
    let server = tls_redis();
    let url = format!("rediss://127.0.0.1:{}", server.port);
    let relay = Relay::new(&RelaySettings {
        ca_cert: Some(server.ca.clone()),
        ..settings(&url)
    })
    .expect("relay");
    until(
        Duration::from_secs(10),
        "the TLS Redis answers",
        async || relay.ping().await.is_ok(),
    )
    .await;
    // A whole run through the TLS Redis.
    let (store, _dir) = sqlite_store().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    spawn_follower(
        relay.clone(),
        store,
        Followed {
            discussion_id: "d".into(),
            token: "run".into(),
        },
        Arc::new(Collect(tx)),
        CancellationToken::new(),
    );
    let events = run_events(1, 5);
    publish_run(
        relay.clone(),
        RunId {
            discussion_id: "d".into(),
            token: "run".into(),
            first_seq: 1,
        },
        futures::stream::iter(events.clone()),
    )
    .await;
    assert_eq!(
        drain(&mut rx).await,
        events.iter().map(|e| e.seq).collect::<Vec<_>>()
    );

    // Without the private CA, the server's certificate is not trusted.
    let untrusted = Relay::new(&settings(&url)).expect("relay");
    let err = untrusted.ping().await.expect_err("unknown CA refused");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
}
