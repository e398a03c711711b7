//! The test support: the `moai` binary pointed at a test server, run piped
//! or in a pseudo-terminal.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moai_tests::fake_llm::Script;
use moai_tests::server::TestServer;
use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use tempfile::TempDir;

pub const MOAI: &str = env!("CARGO_BIN_EXE_moai");

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The binary pointed at one server, with its own config dir and no local key.
pub struct Moai {
    pub server: String,
    pub key: String,
    pub config: TempDir,
    pub data: TempDir,
    /// More environment for every run (TLS files and the like).
    pub env: Vec<(String, String)>,
}

impl Moai {
    pub fn new(server: &str, key: &str) -> Self {
        Moai {
            server: server.to_string(),
            key: key.to_string(),
            config: tempfile::tempdir().expect("config dir"),
            data: tempfile::tempdir().expect("data dir"),
            env: Vec::new(),
        }
    }

    pub fn for_server(ts: &TestServer) -> Self {
        Self::new(&ts.url, &ts.key)
    }

    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(MOAI);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("MOAI_SERVER", &self.server)
            .env("MOAI_API_KEY", &self.key)
            .env("MOAI_CONFIG_DIR", self.config.path())
            .env("MOAI_DATA_DIR", self.data.path())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    pub async fn run(&self, args: &[&str]) -> Run {
        let output = tokio::time::timeout(Duration::from_secs(60), self.command(args).output())
            .await
            .unwrap_or_else(|_| panic!("moai {args:?} did not finish within 60s"))
            .expect("moai runs");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs and insists on exit 0.
    pub async fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args).await;
        assert_eq!(run.code, 0, "moai {args:?} failed: {run:?}");
        run
    }
}

/// A server whose models answer with fixed texts, and a project using them.
pub async fn server_with_project(models: &[(&str, &str)]) -> (TestServer, Moai) {
    let ts = TestServer::spawn().await;
    for (model, text) in models {
        ts.llm.script(model, Script::new().text(*text));
    }
    let moai = Moai::for_server(&ts);
    let mut args = vec!["project", "create", "roundtable"];
    for (model, _) in models {
        args.extend(["--model", model]);
    }
    moai.ok(&args).await;
    moai.ok(&["use", "roundtable"]).await;
    (ts, moai)
}

/// The `## <model>` headers of plain output, in order.
pub fn headers(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .collect()
}

/// `moai` running in a pseudo-terminal: what it drew so far, keys to send,
/// and its exit code.
pub struct Pty {
    child: Box<dyn portable_pty::Child + Send + Sync>,
    writer: Box<dyn Write + Send>,
    drawn: Arc<Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    _master: Box<dyn portable_pty::MasterPty + Send>,
}

impl Pty {
    /// Starts `moai args` in a terminal of 30 rows and `cols` columns.
    pub fn spawn(moai: &Moai, args: &[&str], cols: u16) -> Pty {
        Self::spawn_with_env(moai, args, cols, &[])
    }

    /// Like [`Pty::spawn`], with extra environment variables.
    pub fn spawn_with_env(moai: &Moai, args: &[&str], cols: u16, env: &[(&str, &str)]) -> Pty {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: 30,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("a pty");
        let mut cmd = CommandBuilder::new(MOAI);
        cmd.args(args);
        cmd.env_clear();
        cmd.env("TERM", "xterm-256color");
        cmd.env("MOAI_SERVER", &moai.server);
        cmd.env("MOAI_API_KEY", &moai.key);
        cmd.env("MOAI_CONFIG_DIR", moai.config.path());
        cmd.env("MOAI_DATA_DIR", moai.data.path());
        for (name, value) in env {
            cmd.env(name, value);
        }
        let child = pair.slave.spawn_command(cmd).expect("spawn in the pty");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("reader");
        let writer = pair.master.take_writer().expect("writer");
        let drawn = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&drawn);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once the child has exited and the pty closed ends the loop.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().expect("lock").extend_from_slice(&buf[..n]);
            }
        });
        Pty {
            child,
            writer,
            drawn,
            reader: Some(reader),
            _master: pair.master,
        }
    }

    /// Everything drawn so far.
    pub fn drawn(&self) -> String {
        String::from_utf8_lossy(&self.drawn.lock().expect("lock")).into_owned()
    }

    /// Waits until the screen shows `text`.
    pub fn wait_for(&self, text: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.drawn().contains(text) {
            assert!(
                Instant::now() < deadline,
                "never drew {text:?}: {}",
                self.drawn()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Types `bytes` (such as `\x03`, Ctrl-C).
    pub fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write to the pty");
        self.writer.flush().expect("flush the pty");
    }

    /// Waits for the exit; returns the exit code and everything drawn.
    pub fn finish(mut self) -> (u32, String) {
        let status = self.child.wait().expect("the child exits");
        drop(self._master);
        if let Some(reader) = self.reader.take() {
            reader.join().expect("reader thread");
        }
        (
            status.exit_code(),
            String::from_utf8_lossy(&self.drawn.lock().expect("lock")).into_owned(),
        )
    }
}

/// The cursor, hidden while drawing, is shown again.
pub trait ShowsCursor {
    fn shows_cursor_at_the_end(&self) -> bool;
}

impl ShowsCursor for String {
    fn shows_cursor_at_the_end(&self) -> bool {
        let shown = self.rfind("\x1b[?25h");
        let hidden = self.rfind("\x1b[?25l");
        matches!((shown, hidden), (Some(s), Some(h)) if s > h)
    }
}
