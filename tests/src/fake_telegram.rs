//! A fake Telegram Bot API server for testing bots end to end.
//!
//! It speaks the real protocol over HTTP on `127.0.0.1:0`: `POST`/`GET
//! /bot<token>/<method>` with JSON, form or multipart parameters, answers in
//! the `{"ok":true,"result":…}` envelope with complete `Message` objects, and
//! long-polls `getUpdates` (offset and timeout honoured). Formatted text is
//! parsed as Telegram does, so malformed HTML and over-long messages are
//! refused with Telegram's own errors.
//!
//! A test pushes user messages and button presses, reads the chat as the user
//! sees it (each message's latest text, its edit count and times, documents),
//! inspects every call made, and can inject failures: a "can't parse
//! entities" rejection of formatted text, or a 429 with `retry_after`. Group
//! chats (negative ids; supergroups below -10¹²) can be joined, migrated to
//! a supergroup, and held to a message rate as Telegram holds bots to about
//! 20 messages a minute per group.

mod body;
mod entities;
mod methods;
mod objects;

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, StatusCode, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
    routing::any,
};
use serde_json::{Value, json};
use tokio::{sync::Notify, task::JoinHandle};

pub use body::{Params, Upload};
pub use entities::visible_text;
use methods::{Failure, failure};
use objects::{chat_json, user_json};

/// The token the fake accepts.
pub const TOKEN: &str = "123456789:AAF-moai-fake-telegram-token";
/// The bot's user id (the part of the token before the colon).
pub const BOT_ID: i64 = 123_456_789;
/// The bot's username.
pub const BOT_USERNAME: &str = "moai_test_bot";
/// Telegram's limit on a message's text, in UTF-16 code units.
pub const MAX_TEXT: usize = 4096;

/// Bot API method names are case-insensitive; calls are recorded under these.
const METHODS: &[&str] = &[
    "getMe",
    "deleteWebhook",
    "setWebhook",
    "deleteMyCommands",
    "sendChatAction",
    "answerCallbackQuery",
    "setMyDescription",
    "setMyShortDescription",
    "setChatMenuButton",
    "setMyCommands",
    "getWebhookInfo",
    "sendMessage",
    "editMessageText",
    "editMessageReplyMarkup",
    "deleteMessage",
    "sendDocument",
    "getUpdates",
];

/// The canonical spelling of a method name (`SendMessage` → `sendMessage`).
fn canonical(method: &str) -> String {
    METHODS
        .iter()
        .find(|m| m.eq_ignore_ascii_case(method))
        .map_or_else(|| method.to_owned(), |m| (*m).to_owned())
}

/// One call the bot made.
#[derive(Debug, Clone)]
pub struct Call {
    /// The Bot API method, as named in the URL (`sendMessage`).
    pub method: String,
    /// Its parameters (uploads described by file name and size).
    pub params: Value,
    /// When it arrived.
    pub at: Instant,
    /// The error description returned, if it failed.
    pub error: Option<String>,
}

/// A message in a chat, as the user sees it now.
#[derive(Debug, Clone)]
pub struct ChatMessage {
    /// Its message id.
    pub id: i64,
    /// The chat it is in.
    pub chat_id: i64,
    /// Whether the bot sent it (else the test's user did).
    pub from_bot: bool,
    /// The text the user sees (formatting parsed away).
    pub text: String,
    /// The text as last sent, with its markup.
    pub raw: String,
    /// The parse mode it was last sent with.
    pub parse_mode: Option<String>,
    /// How many times it was edited.
    pub edits: usize,
    /// When it was sent.
    pub sent_at: Instant,
    /// When each edit happened.
    pub edit_times: Vec<Instant>,
    /// Its inline keyboard, if any.
    pub reply_markup: Option<Value>,
    /// The document it carries, if any.
    pub document: Option<Upload>,
    /// The caption of its document.
    pub caption: Option<String>,
}

struct PendingUpdate {
    id: i64,
    json: Value,
}

#[derive(Default)]
struct Inner {
    next_update_id: i64,
    updates: VecDeque<PendingUpdate>,
    calls: Vec<Call>,
    messages: Vec<ChatMessage>,
    next_message_id: HashMap<i64, i64>,
    reject_formatting: usize,
    rate_limits: HashMap<String, (usize, u64)>,
    /// At most this many messages per window in each group, if set.
    group_limit: Option<(usize, Duration)>,
    /// When each group's recent messages were sent or edited.
    group_sends: HashMap<i64, VecDeque<Instant>>,
    commands: Vec<Value>,
    next_callback: u64,
}

struct Shared {
    inner: Mutex<Inner>,
    updates_ready: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct ServerGuard(JoinHandle<()>);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A running fake Bot API. Clones share the same server, which stops when
/// the last clone is dropped.
#[derive(Clone)]
pub struct FakeTelegram {
    shared: Arc<Shared>,
    addr: SocketAddr,
    _server: Arc<ServerGuard>,
}

impl FakeTelegram {
    /// Starts a fake Bot API on a free local port.
    ///
    /// # Panics
    /// If no local port can be bound.
    pub async fn start() -> Self {
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner::default()),
            updates_ready: Notify::new(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a local port");
        let addr = listener.local_addr().expect("local address");
        let app = Router::new()
            .route("/{bot}/{method}", any(handle))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "fake Telegram server failed");
            }
        });
        FakeTelegram {
            shared,
            addr,
            _server: Arc::new(ServerGuard(server)),
        }
    }

    /// The base URL to give the bot (`Bot::set_api_url`).
    #[must_use]
    pub fn api_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The token the fake accepts.
    #[must_use]
    pub fn token(&self) -> &'static str {
        TOKEN
    }

    fn push_update(&self, inner: &mut Inner, kind: &str, payload: Value) -> i64 {
        inner.next_update_id += 1;
        let id = inner.next_update_id;
        inner.updates.push_back(PendingUpdate {
            id,
            json: json!({ "update_id": id, kind: payload }),
        });
        id
    }

    /// `user` sends `text` to the bot in their private chat; returns the message id.
    pub fn send_text(&self, user: i64, text: &str) -> i64 {
        self.send_text_in(user, user, text)
    }

    /// `user` sends `text` in `chat` (negative ids are groups); returns the message id.
    pub fn send_text_in(&self, chat: i64, user: i64, text: &str) -> i64 {
        self.send(chat, user, text, None)
    }

    /// `user` answers the message `reply_to` of their private chat with `text`
    /// (Telegram's "reply"); returns the message id.
    pub fn send_reply(&self, user: i64, reply_to: i64, text: &str) -> i64 {
        self.send(user, user, text, Some(reply_to))
    }

    /// `user` answers the message `reply_to` of `chat` with `text`; returns the message id.
    pub fn send_reply_in(&self, chat: i64, user: i64, reply_to: i64, text: &str) -> i64 {
        self.send(chat, user, text, Some(reply_to))
    }

    /// `user` adds the bot to the group `chat` (a `my_chat_member` update).
    pub fn add_bot_to(&self, chat: i64, user: i64) {
        {
            let mut inner = self.shared.lock();
            let payload = json!({
                "chat": chat_json(chat),
                "from": user_json(user),
                "date": objects::unix_now(),
                "old_chat_member": { "user": user_json(BOT_ID), "status": "left" },
                "new_chat_member": { "user": user_json(BOT_ID), "status": "member" },
            });
            self.push_update(&mut inner, "my_chat_member", payload);
        }
        self.shared.updates_ready.notify_waiters();
    }

    /// The group `from` becomes the supergroup `to`, as Telegram announces
    /// it: a service message in each chat naming the other.
    pub fn migrate_to_supergroup(&self, from: i64, to: i64, user: i64) {
        {
            let mut inner = self.shared.lock();
            for (chat, field, other) in [
                (from, "migrate_to_chat_id", to),
                (to, "migrate_from_chat_id", from),
            ] {
                let next = inner.next_message_id.entry(chat).or_insert(0);
                *next += 1;
                let payload = json!({
                    "message_id": *next,
                    "from": user_json(user),
                    "chat": chat_json(chat),
                    "date": objects::unix_now(),
                    field: other,
                });
                self.push_update(&mut inner, "message", payload);
            }
        }
        self.shared.updates_ready.notify_waiters();
    }

    /// Holds every group to at most `messages` sent or edited per `window`,
    /// answering further ones with 429 and the `retry_after` until a message
    /// leaves the window.
    pub fn limit_groups(&self, messages: usize, window: Duration) {
        self.shared.lock().group_limit = Some((messages, window));
    }

    fn send(&self, chat: i64, user: i64, text: &str, reply_to: Option<i64>) -> i64 {
        let id = {
            let mut inner = self.shared.lock();
            let replied = reply_to.and_then(|id| {
                let original = inner
                    .messages
                    .iter()
                    .find(|m| m.chat_id == chat && m.id == id)?;
                Some(original.to_json(user))
            });
            let message = inner.new_message(chat, false, text.to_owned(), text.to_owned(), None);
            let mut json = message.to_json(user);
            if let Some(replied) = replied {
                json["reply_to_message"] = replied;
            }
            let id = message.id;
            inner.messages.push(message);
            self.push_update(&mut inner, "message", json);
            id
        };
        self.shared.updates_ready.notify_waiters();
        id
    }

    /// `user` presses the inline button with callback `data` under the bot's
    /// message `message_id` in `chat`; returns the callback query id.
    pub fn press_button(&self, user: i64, chat: i64, message_id: i64, data: &str) -> String {
        let query_id = {
            let mut inner = self.shared.lock();
            inner.next_callback += 1;
            let query_id = format!("cb{}", inner.next_callback);
            let message = inner
                .messages
                .iter()
                .find(|m| m.chat_id == chat && m.id == message_id)
                .map(|m| m.to_json(user))
                .unwrap_or_else(
                    || json!({ "chat": chat_json(chat), "message_id": message_id, "date": 0 }),
                );
            let payload = json!({
                "id": query_id,
                "from": user_json(user),
                "message": message,
                "chat_instance": format!("ci{chat}"),
                "data": data,
            });
            self.push_update(&mut inner, "callback_query", payload);
            query_id
        };
        self.shared.updates_ready.notify_waiters();
        query_id
    }

    /// Every message of `chat`, oldest first, as the user sees them now.
    #[must_use]
    pub fn messages(&self, chat: i64) -> Vec<ChatMessage> {
        self.shared
            .lock()
            .messages
            .iter()
            .filter(|m| m.chat_id == chat)
            .cloned()
            .collect()
    }

    /// The bot's messages in `chat`, oldest first.
    #[must_use]
    pub fn bot_messages(&self, chat: i64) -> Vec<ChatMessage> {
        self.messages(chat)
            .into_iter()
            .filter(|m| m.from_bot)
            .collect()
    }

    /// Every call the bot made, in order.
    #[must_use]
    pub fn calls(&self) -> Vec<Call> {
        self.shared.lock().calls.clone()
    }

    /// The calls of one method, in order.
    #[must_use]
    pub fn calls_to(&self, method: &str) -> Vec<Call> {
        let method = canonical(method);
        self.shared
            .lock()
            .calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    /// The commands the bot last registered with `setMyCommands`.
    #[must_use]
    pub fn commands(&self) -> Vec<Value> {
        self.shared.lock().commands.clone()
    }

    /// Updates pushed but not yet confirmed by the bot.
    #[must_use]
    pub fn pending_updates(&self) -> usize {
        self.shared.lock().updates.len()
    }

    /// Rejects the next `n` formatted texts (`parse_mode` set) with Telegram's
    /// "can't parse entities" error.
    pub fn reject_formatting(&self, n: usize) {
        self.shared.lock().reject_formatting = n;
    }

    /// Answers the next `n` calls of `method` with 429 and `retry_after`.
    pub fn rate_limit(&self, method: &str, n: usize, retry_after_secs: u64) {
        self.shared
            .lock()
            .rate_limits
            .insert(canonical(method), (n, retry_after_secs));
    }

    /// Waits until `check` holds, polling; `false` if `timeout` passed first.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&Self) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if check(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// The methods that count against a group's message rate.
const GROUP_LIMITED: &[&str] = &["sendMessage", "editMessageText", "sendDocument"];

impl Inner {
    /// A 429 if this call would go past the group's message rate; else the
    /// call is counted.
    fn group_limited(&mut self, method: &str, params: &Params) -> Option<Failure> {
        let (messages, window) = self.group_limit?;
        let chat = params.int("chat_id").filter(|chat| *chat < 0)?;
        if !GROUP_LIMITED.contains(&method) {
            return None;
        }
        let now = Instant::now();
        let sent = self.group_sends.entry(chat).or_default();
        while sent
            .front()
            .is_some_and(|at| now.duration_since(*at) >= window)
        {
            sent.pop_front();
        }
        if sent.len() < messages {
            sent.push_back(now);
            return None;
        }
        let oldest = sent.front().copied().unwrap_or(now);
        let wait = window.saturating_sub(now.duration_since(oldest));
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Some(Failure {
            code: 429,
            description: format!("Too Many Requests: retry after {secs}"),
            retry_after: Some(secs.max(1)),
        })
    }
}

/// Long-polls for updates at or after `offset`, confirming those before it.
async fn get_updates(shared: &Shared, params: &Params) -> Value {
    let offset = params.int("offset").unwrap_or(0);
    let limit = usize::try_from(params.int("limit").unwrap_or(100).clamp(1, 100)).unwrap_or(100);
    let timeout =
        Duration::from_secs(u64::try_from(params.int("timeout").unwrap_or(0)).unwrap_or(0));
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let notified = shared.updates_ready.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let mut inner = shared.lock();
            inner.updates.retain(|u| u.id >= offset);
            let ready: Vec<Value> = inner
                .updates
                .iter()
                .take(limit)
                .map(|u| u.json.clone())
                .collect();
            if !ready.is_empty() {
                return Value::Array(ready);
            }
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return json!([]);
        }
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    Path((bot, method)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let method = canonical(&method);
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let params = match Params::parse(query.as_deref(), content_type, &body) {
        Ok(params) => params,
        Err(e) => return failure(&Failure::bad_request(format!("Bad Request: {e}"))),
    };
    let at = Instant::now();
    let record = |error: Option<String>| Call {
        method: method.clone(),
        params: params.to_json(),
        at,
        error,
    };
    if bot.strip_prefix("bot") != Some(TOKEN) {
        let fail = Failure {
            code: 401,
            description: "Unauthorized".into(),
            retry_after: None,
        };
        shared
            .lock()
            .calls
            .push(record(Some(fail.description.clone())));
        return failure(&fail);
    }
    let limited = {
        let mut inner = shared.lock();
        let group_limited = inner.group_limited(&method, &params);
        match inner.rate_limits.get_mut(&method) {
            _ if group_limited.is_some() => group_limited,
            Some((left, secs)) if *left > 0 => {
                *left -= 1;
                Some(Failure {
                    code: 429,
                    description: format!("Too Many Requests: retry after {secs}"),
                    retry_after: Some(*secs),
                })
            }
            _ => None,
        }
    };
    if let Some(fail) = limited {
        shared
            .lock()
            .calls
            .push(record(Some(fail.description.clone())));
        return failure(&fail);
    }
    if method == "getUpdates" {
        shared.lock().calls.push(record(None));
        let updates = get_updates(&shared, &params).await;
        return (
            StatusCode::OK,
            axum::Json(json!({ "ok": true, "result": updates })),
        )
            .into_response();
    }
    let mut inner = shared.lock();
    let result = inner.call(&method, &params);
    inner
        .calls
        .push(record(result.as_ref().err().map(|f| f.description.clone())));
    drop(inner);
    match result {
        Ok(result) => (
            StatusCode::OK,
            axum::Json(json!({ "ok": true, "result": result })),
        )
            .into_response(),
        Err(fail) => failure(&fail),
    }
}
