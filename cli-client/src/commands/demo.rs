//! `moai demo`: the offline quick start as one command. Starts the demo model
//! server and a moai-server of its own (logs to files, never to the
//! terminal), waits until the server answers, runs a roundtable with the
//! ordinary `open` and `discuss` commands, and stops both.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use moai_proto::v1::{CreateProjectRequest, ListProjectsRequest};
use tokio::process::{Child, Command};

use crate::args::{DemoArgs, DiscussArgs, GlobalArgs, OpenArgs, join_words};
use crate::errors::{CliError, ExitCode};
use crate::session::Session;
use crate::{client, config};

/// The binaries the demo needs, all in one directory: what the README's
/// quick start builds.
pub const BINARIES: [&str; 3] = ["moai", "moai-server", "moai-fake-llm"];

/// The stand-in models at the demo table.
pub const MODELS: [&str; 3] = ["demo/alpha", "demo/beta", "demo/gamma"];

/// How long the server may take to answer after it was started.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// Runs the demo.
///
/// # Errors
/// A binary missing, a process that cannot start or dies early, the server's
/// error in one of the commands.
pub async fn run(session: &mut Session, args: DemoArgs) -> Result<ExitCode, CliError> {
    let question = join_words(&args.question);
    let [server_bin, llm_bin] = [BINARIES[1], BINARIES[2]].map(sibling);
    for bin in [&server_bin, &llm_bin] {
        if !bin.exists() {
            return Err(CliError::Usage(format!(
                "moai demo needs {} next to moai; build everything it needs with: \
                 cargo build --release --bin moai --bin moai-server --bin moai-fake-llm",
                bin.display()
            )));
        }
    }
    let dir = config::data_dir().join("demo");
    fresh_dir(&dir)?;
    let (llm_port, port) = (free_port()?, free_port()?);
    let url = format!("http://127.0.0.1:{port}");
    let mut children = Children(Vec::new());
    let mut llm = Command::new(&llm_bin);
    llm.args(["--demo", "--port", &llm_port.to_string()]);
    children.start(llm, &dir.join("fake-llm.log"))?;
    let mut server = Command::new(&server_bin);
    for name in [
        "DATABASE_URL",
        "MOAI_CONFIG",
        "MOAI_API_KEYS",
        "MOAI_GATEWAY_KEYS",
        "OPENROUTER_API_KEY",
    ] {
        server.env_remove(name);
    }
    server
        .env("MOAI_DATA_DIR", &dir)
        .env("MOAI_LISTEN", format!("127.0.0.1:{port}"))
        // The demo is no front door: leave 127.0.0.1:50080 to a real server.
        .env("MOAI_HTTP_LISTEN", "off")
        .env(
            "MOAI_LLM_BASE_URL",
            format!("http://127.0.0.1:{llm_port}/v1"),
        )
        .env("MOAI_LLM_API_KEY", "none")
        .env("RUST_LOG", "info");
    children.start(server, &dir.join("server.log"))?;
    session.out.note(&format!(
        "Started the demo model server and moai-server at {url}; logs in {}",
        dir.display()
    ));
    let key = wait_ready(&url, &dir, &mut children).await?;

    let global = GlobalArgs {
        server: url,
        api_key: Some(key),
        project: None,
        json: session.global.json,
        no_color: session.global.no_color,
        show_reasoning: session.global.show_reasoning,
    };
    let mut demo = Session::with_state_dir(global, "demo", &dir)?;
    let client = demo.client().await?;
    let project = client
        .projects
        .clone()
        .create_project(CreateProjectRequest {
            name: "demo".into(),
            models: MODELS.iter().map(|m| (*m).to_string()).collect(),
            ..Default::default()
        })
        .await
        .map_err(client.error("CreateProject"))?
        .into_inner()
        .project
        .ok_or_else(|| CliError::Internal("empty CreateProject response".into()))?;
    demo.remember(|s| {
        s.project = Some(project.id.clone());
        s.project_name = Some(project.name.clone());
    })?;
    let models: Vec<String> = MODELS.iter().map(|m| format!("-m {m}")).collect();
    demo.out
        .note(&format!("$ moai project create demo {}", models.join(" ")));
    demo.out.note(&format!("$ moai open \"{question}\""));
    let code = super::open::run(
        &mut demo,
        OpenArgs {
            question: vec![question],
        },
    )
    .await?;
    if code != ExitCode::Success {
        return Ok(code);
    }
    demo.out
        .note("$ moai discuss --rounds 1    # now in turns: each model hears the others");
    let code = super::discuss::run(
        &mut demo,
        DiscussArgs {
            rounds: Some(1),
            discussion: None,
            topic: Vec::new(),
            until_consensus: false,
        },
    )
    .await?;
    children.stop().await;
    if code == ExitCode::Success {
        demo.out.note(
            "That was moai with three stand-in models; both servers are stopped again. \
             With real models: OPENROUTER_API_KEY=sk-or-... moai-server, then \
             moai project create <name> -m <vendor/model>... (see README).",
        );
    }
    Ok(code)
}

/// `name` in the directory of the running `moai`.
fn sibling(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    exe.parent()
        .unwrap_or_else(|| Path::new("."))
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// The demo's directory, without the database of an earlier demo.
fn fresh_dir(dir: &Path) -> Result<(), CliError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::io(format!("cannot create {}", dir.display()), e))?;
    for name in ["moai.db", "moai.db-wal", "moai.db-shm"] {
        match std::fs::remove_file(dir.join(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(CliError::io(
                    format!("cannot remove the old demo database in {}", dir.display()),
                    e,
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// A loopback port that was free a moment ago.
fn free_port() -> Result<u16, CliError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| CliError::io("cannot find a free loopback port", e))
}

/// Polls until the server answers with the key it wrote, within
/// [`READY_WITHIN`]; a process that exits first is reported with its log.
async fn wait_ready(url: &str, dir: &Path, children: &mut Children) -> Result<String, CliError> {
    let deadline = tokio::time::Instant::now() + READY_WITHIN;
    let key_file = dir.join("local.key");
    loop {
        children.check_alive()?;
        let key = std::fs::read_to_string(&key_file).unwrap_or_default();
        let key = key.trim();
        if !key.is_empty() && answers(url, key).await {
            return Ok(key.to_string());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(CliError::Unreachable {
                server: url.to_string(),
                reason: format!(
                    "not ready after {}s; see {}",
                    READY_WITHIN.as_secs(),
                    dir.join("server.log").display()
                ),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether the server at `url` serves a call with `key`.
async fn answers(url: &str, key: &str) -> bool {
    let Ok(channel) = client::connect(url).await else {
        return false;
    };
    let key = config::ApiKey::new(key, "the demo server's key file");
    let Ok(client) = client::Client::new(channel, url, &key, "demo") else {
        return false;
    };
    client
        .projects
        .clone()
        .list_projects(ListProjectsRequest::default())
        .await
        .is_ok()
}

/// The started processes, with where each logs; killed when dropped.
struct Children(Vec<(Child, PathBuf)>);

impl Children {
    /// Starts `command` with stdout and stderr going to `log`.
    fn start(&mut self, mut command: Command, log: &Path) -> Result<(), CliError> {
        let io = |e| CliError::io(format!("cannot write {}", log.display()), e);
        let out = std::fs::File::create(log).map_err(io)?;
        let err = out.try_clone().map_err(io)?;
        let program = command
            .as_std()
            .get_program()
            .to_string_lossy()
            .into_owned();
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| CliError::io(format!("cannot start {program}"), e))?;
        self.0.push((child, log.to_path_buf()));
        Ok(())
    }

    /// An error naming the first process that has exited, and its log.
    fn check_alive(&mut self) -> Result<(), CliError> {
        for (child, log) in &mut self.0 {
            if let Ok(Some(status)) = child.try_wait() {
                let text = std::fs::read_to_string(&*log).unwrap_or_default();
                let last = text.lines().rev().find(|l| !l.trim().is_empty());
                return Err(CliError::Internal(format!(
                    "a demo process exited ({status}) before the server was ready: {} (log: {})",
                    last.unwrap_or("no output"),
                    log.display()
                )));
            }
        }
        Ok(())
    }

    /// Stops every process and waits for it.
    async fn stop(&mut self) {
        for (child, _) in &mut self.0 {
            let _ = child.kill().await;
        }
    }
}
