//! The bot under test: the real dispatcher in-process, against the fake Bot
//! API and the real moai server with the fake model upstream.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use moai_proto::v1::{
    Discussion, DiscussionStatus, GetDiscussionRequest, ListDiscussionsRequest,
    ListProjectsRequest, discussion_service_client::DiscussionServiceClient,
    project_service_client::ProjectServiceClient,
};
use moai_telegram::{Allowlist, BotError, Config};
use moai_tests::{
    fake_telegram::{ChatMessage, FakeTelegram, TOKEN},
    server::TestServer,
    wait,
};
use secrecy::SecretString;
use tokio::{sync::oneshot, task::JoinHandle};

/// The allowed Telegram user of the tests.
pub const USER: i64 = 1001;
/// A user who is not on the allowlist.
pub const STRANGER: i64 = 2002;
/// How long any step may take.
pub const LIMIT: Duration = Duration::from_secs(40);

/// The bot running in-process.
pub struct RunningBot {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), BotError>>,
}

impl RunningBot {
    /// Stops the bot gracefully and waits until it has.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = tokio::time::timeout(LIMIT, &mut self.task).await;
        assert!(
            matches!(result, Ok(Ok(Ok(())))),
            "the bot stopped cleanly: {result:?}"
        );
    }
}

impl Drop for RunningBot {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Installs logging when `TEST_LOG` is set.
fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "info,moai_telegram=debug",
            ))
            .with_test_writer()
            .try_init();
    }
}

/// A configuration for the bot against `tg` and a server at `server_url`.
pub fn config(tg: &FakeTelegram, server_url: &str, key: &str, state: PathBuf) -> Config {
    let mut config = Config::new(
        SecretString::from(TOKEN),
        SecretString::from(key.to_owned()),
        state,
    );
    config.api_url = Some(tg.api_url().parse().expect("fake URL"));
    config.server = server_url.to_owned();
    config.allowlist = Allowlist::of([USER as u64]);
    config.poll_timeout = Duration::from_secs(1);
    // A stopped bot pauses the answers it shows at once (the binary's test
    // covers the grace period).
    config.shutdown_grace = Duration::ZERO;
    config
}

/// Starts the bot with `config`.
pub fn start(config: Config) -> RunningBot {
    init_logs();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(moai_telegram::run(config, async move {
        let _ = stopped.await;
    }));
    RunningBot {
        stop: Some(stop),
        task,
    }
}

/// A server, a fake Bot API and the bot between them.
pub struct World {
    pub tg: FakeTelegram,
    pub ts: TestServer,
    pub state_dir: tempfile::TempDir,
    pub bot: Option<RunningBot>,
}

impl World {
    /// Everything started, the bot allowing [`USER`].
    pub async fn start() -> Self {
        Self::start_with(moai_tests::server::TestOptions::default()).await
    }

    /// Everything started, the server with `options`.
    pub async fn start_with(options: moai_tests::server::TestOptions) -> Self {
        let tg = FakeTelegram::start().await;
        let ts = TestServer::spawn_with(options).await;
        let state_dir = tempfile::tempdir().expect("temp dir");
        let mut world = World {
            tg,
            ts,
            state_dir,
            bot: None,
        };
        world.bot = Some(start(world.config()));
        world
    }

    /// The bot's configuration in this world.
    pub fn config(&self) -> Config {
        config(
            &self.tg,
            &self.ts.url,
            &self.ts.gateway_key,
            self.state_dir.path().join("state.json"),
        )
    }

    /// [`USER`] sends a message.
    pub fn say(&self, text: &str) {
        self.tg.send_text(USER, text);
    }

    /// Waits for a bot message in the user's chat whose text contains `needle`.
    pub async fn expect_reply(&self, needle: &str) -> ChatMessage {
        self.expect_message(|m| m.text.contains(needle), needle)
            .await
    }

    /// Waits for a bot message in the user's chat that satisfies `check`.
    pub async fn expect_message(
        &self,
        check: impl Fn(&ChatMessage) -> bool,
        what: &str,
    ) -> ChatMessage {
        let mut found = None;
        let ok = self
            .tg
            .wait_until(LIMIT, |tg| {
                found = tg.bot_messages(USER).into_iter().find(|m| check(m));
                found.is_some()
            })
            .await;
        assert!(
            ok,
            "no message {what:?}; the chat: {:#?}",
            texts(&self.tg.bot_messages(USER))
        );
        found.expect("found")
    }

    /// Waits until `count` answers by `model` are final (no longer streaming).
    pub async fn expect_answers(&self, model: &str, count: usize) -> Vec<ChatMessage> {
        let mut answers = Vec::new();
        let ok = self
            .tg
            .wait_until(LIMIT, |tg| {
                answers = answers_of(&tg.bot_messages(USER), model);
                answers.len() >= count && answers.iter().all(|m| !m.text.contains('✍'))
            })
            .await;
        assert!(
            ok,
            "{count} final answers of {model}; the chat: {:#?}",
            texts(&self.tg.bot_messages(USER))
        );
        answers
    }

    /// The names of the projects the server holds for `user`, acting as the bot does.
    pub async fn server_projects(&self, user: i64) -> Vec<String> {
        self.projects_of(&format!("telegram:{user}")).await
    }

    /// The names of the projects the server holds for a gateway user
    /// (`telegram:<id>`, `telegram-group:<chat id>`).
    pub async fn projects_of(&self, principal: &str) -> Vec<String> {
        let channel = self
            .ts
            .auth_channel(&self.ts.gateway_key, Some(principal))
            .await;
        let response = ProjectServiceClient::new(channel)
            .list_projects(ListProjectsRequest::default())
            .await
            .expect("list projects");
        response
            .into_inner()
            .projects
            .into_iter()
            .map(|p| p.name)
            .collect()
    }
}

impl World {
    /// Every discussion of a gateway user, with its rounds.
    pub async fn discussions_of(&self, principal: &str) -> Vec<Discussion> {
        let channel = self
            .ts
            .auth_channel(&self.ts.gateway_key, Some(principal))
            .await;
        let mut client = DiscussionServiceClient::new(channel);
        let listed = client
            .list_discussions(ListDiscussionsRequest::default())
            .await
            .expect("list discussions")
            .into_inner()
            .discussions;
        let mut discussions = Vec::new();
        for d in listed {
            let request = GetDiscussionRequest {
                discussion_id: d.id,
            };
            let full = client
                .get_discussion(request)
                .await
                .expect("get discussion");
            discussions.extend(full.into_inner().discussion);
        }
        discussions
    }

    /// Waits until no discussion of `principal` is running any more.
    pub async fn wait_until_idle(&self, principal: &str) {
        wait::until(LIMIT, "the run on the server ends", async || {
            !self
                .discussions_of(principal)
                .await
                .iter()
                .any(|d| d.status == DiscussionStatus::Running as i32)
        })
        .await;
    }
}

/// The first messages of each answer of `model` (headers "🤖 model").
pub fn answers_of(messages: &[ChatMessage], model: &str) -> Vec<ChatMessage> {
    let header = format!("🤖 {model}\n");
    let streaming = format!("🤖 {model} ✍️\n");
    messages
        .iter()
        .filter(|m| m.text.starts_with(&header) || m.text.starts_with(&streaming))
        .cloned()
        .collect()
}

/// The texts of messages, for failure output.
pub fn texts(messages: &[ChatMessage]) -> Vec<String> {
    messages.iter().map(|m| m.text.clone()).collect()
}

/// The body of an answer message, without its header line.
pub fn body(message: &ChatMessage) -> &str {
    message.text.split_once('\n').map_or("", |(_, body)| body)
}

/// A TCP proxy in front of `target` that counts the connections made to it.
pub async fn counting_proxy(target: SocketAddr) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (format!("http://{addr}"), count)
}

/// A streamed answer: `n` short sentences, paced so it takes a while.
pub fn sentences(model: &str, n: usize) -> String {
    (0..n)
        .map(|i| format!("{model} point {i}."))
        .collect::<Vec<_>>()
        .join(" ")
}
