//! Redis for the scale-out tests: the shared one named by
//! `MOAI_TEST_REDIS_URL` (each test under a key prefix of its own), or a
//! `redis-server` of the test's own on a free port, for tests that kill it.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The relay settings a test server gets.
#[derive(Clone, Debug)]
pub struct TestRedis {
    pub url: String,
    pub key_prefix: String,
}

/// The shared test Redis, if `MOAI_TEST_REDIS_URL` names one.
pub fn redis_url() -> Option<String> {
    std::env::var("MOAI_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

impl TestRedis {
    /// The shared test Redis under a fresh key prefix (replicas of one test share it).
    pub fn shared() -> Option<Self> {
        redis_url().map(|url| Self::at(&url))
    }

    /// `url` under a fresh key prefix.
    pub fn at(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            key_prefix: format!("moai-t-{}:", uuid::Uuid::new_v4().simple()),
        }
    }
}

/// A `redis-server` of one test's own, on a port it keeps across restarts;
/// killed when dropped.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts `redis-server` on a free loopback port and waits until it answers.
    ///
    /// # Panics
    /// If `redis-server` is missing or does not answer within 10 s.
    pub async fn start() -> Self {
        let mut server = Self {
            child: None,
            port: crate::process::free_port(),
            dir: tempfile::tempdir().expect("tmp"),
        };
        server.restart().await;
        server
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (no goodbye to its clients, as a crash would).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again, empty, on the same port, and waits until it answers.
    pub async fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server runs");
        self.child = Some(child);
        let port = self.port;
        let what = format!("redis-server on port {port} answers");
        crate::wait::until(Duration::from_secs(10), &what, async || ping(port).await).await;
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether a Redis answers PING on `port` (spoken by hand: one line each way).
async fn ping(port: u16) -> bool {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let Ok(mut conn) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    if conn.write_all(b"PING\r\n").await.is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    matches!(
        tokio::time::timeout(Duration::from_secs(1), conn.read_exact(&mut reply)).await,
        Ok(Ok(_)) if &reply == b"+PONG\r\n"
    )
}
