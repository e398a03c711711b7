//! The real `moai-server` binary as a child process, for tests that must kill
//! it (crash recovery, dead replicas) and for the load generator.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::server::KeyAuth;

/// `moai-server` next to the running executable's directory (`target/<profile>/`),
/// which `cargo test --workspace` and `cargo build` produce.
pub fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join(format!("moai-server{}", std::env::consts::EXE_SUFFIX))
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// How to start the binary.
pub struct ProcessOptions<'a> {
    pub binary: PathBuf,
    pub data_dir: &'a Path,
    pub port: u16,
    /// `name:key` pairs for MOAI_API_KEYS.
    pub api_keys: String,
    pub llm_base_url: String,
    pub database_url: Option<String>,
    /// Contents of a TOML config file to pass with `--config`.
    pub config: Option<String>,
}

/// A running server process; killed when dropped.
pub struct ServerProcess {
    child: Child,
    port: u16,
}

impl ServerProcess {
    /// Starts the binary.
    ///
    /// # Panics
    /// If the binary is missing or cannot be started.
    pub fn start(options: ProcessOptions<'_>) -> Self {
        assert!(
            options.binary.exists(),
            "{} is missing: `cargo test --workspace` or `cargo build -p moai-server` builds it",
            options.binary.display()
        );
        let mut cmd = Command::new(&options.binary);
        if let Some(config) = options.config {
            let path = options.data_dir.join("server.toml");
            std::fs::write(&path, config).expect("write the server config");
            cmd.arg("--config").arg(path);
        }
        if let Some(url) = options.database_url {
            cmd.env("DATABASE_URL", url);
        }
        let child = cmd
            .env("MOAI_DATA_DIR", options.data_dir)
            .env("MOAI_LISTEN", format!("127.0.0.1:{}", options.port))
            // Not the default 127.0.0.1:50080: servers run side by side here.
            .env("MOAI_HTTP_LISTEN", "off")
            .env("MOAI_API_KEYS", options.api_keys)
            .env("MOAI_LLM_BASE_URL", options.llm_base_url)
            .env("MOAI_LLM_API_KEY", "fake-upstream-key")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn moai-server");
        Self {
            child,
            port: options.port,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A channel, once the server accepts connections (within 30 s).
    pub async fn channel(&self) -> Channel {
        let endpoint =
            Endpoint::from_shared(format!("http://127.0.0.1:{}", self.port)).expect("url");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            match endpoint.connect().await {
                Ok(channel) => return channel,
                Err(e) => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "server did not come up: {e}"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// A channel authenticating with `key`.
    pub async fn auth_channel(&self, key: &str) -> InterceptedService<Channel, KeyAuth> {
        InterceptedService::new(self.channel().await, KeyAuth::new(key, None))
    }

    /// Kills the process at once (SIGKILL): nothing gets to clean up.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
