//! Load generator for `OpenDiscussion`: starts the fake model upstream in this
//! process and the real `moai-server` binary as a child process (SQLite in a
//! temp dir), then runs C concurrent clients, each asking M models a question
//! R times in a row, and prints figures. Loopback only; it stops by itself.
//!
//! `cargo run --release -p moai-tests --bin moai-load -- --concurrency 1,100,1000`
//!
//! Scale-out: `--replicas 2 --watch-from other` starts two replicas on the
//! PostgreSQL database `MOAI_LOAD_DATABASE_URL` and the Redis
//! `MOAI_LOAD_REDIS_URL` (default `redis://127.0.0.1:6379`), runs the load
//! through the first, and watches every discussion from the second, printing
//! the watcher's lag behind the first (from each event's time to its arrival)
//! and the deltas relayed per second.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use futures::StreamExt as _;
use moai_proto::v1::{self, discussion_event::Payload};
use moai_tests::fake_llm::{FakeLlm, Script};
use moai_tests::process::{ProcessOptions, ServerProcess};
use moai_tests::server::KeyAuth;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

const KEY: &str = "load-generator-key-0001";

/// Measures moai's overhead on parallel rounds against a fake upstream.
#[derive(Parser, Debug)]
struct Args {
    /// Concurrent clients, one level after another.
    #[arg(long, value_delimiter = ',', default_value = "1,100,1000")]
    concurrency: Vec<usize>,
    /// Models per project (M).
    #[arg(long, default_value_t = 4)]
    models: usize,
    /// Rounds each client runs in a row at each level.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Unmeasured rounds each client runs first, at the same concurrency.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Upstream latency to the first token, in ms.
    #[arg(long, default_value_t = 200)]
    first_token_ms: u64,
    /// Tokens per answer.
    #[arg(long, default_value_t = 20)]
    tokens: usize,
    /// Upstream pace between tokens, in ms.
    #[arg(long, default_value_t = 10)]
    pace_ms: u64,
    /// Spread the clients' first requests evenly over one round instead of
    /// starting all at once (steady concurrency rather than lockstep bursts).
    #[arg(long)]
    stagger: bool,
    /// A hard cap on the server's concurrent calls to the fake (the
    /// provider's `max_concurrency`); default: none, the server's default
    /// provider configuration (its adaptive limit).
    #[arg(long)]
    max_concurrency: Option<usize>,
    /// The server binary (default: next to this one).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Server replicas to start (more than one needs `MOAI_LOAD_DATABASE_URL`
    /// on PostgreSQL, and Redis at `MOAI_LOAD_REDIS_URL`).
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    /// Where each discussion is also watched from: nowhere, or a replica
    /// other than the one running it.
    #[arg(long, value_enum, default_value_t = WatchFrom::None)]
    watch_from: WatchFrom,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum WatchFrom {
    None,
    Other,
}

struct Sample {
    first_delta: Duration,
    total: Duration,
    /// From the slowest model's last byte (as the upstream sent it) to the
    /// end of the round as the client saw it.
    after_upstream: Option<Duration>,
    failed: bool,
    /// What the watcher on the other replica saw, when there is one.
    watched: Option<Watched>,
}

/// One discussion watched from another replica.
struct Watched {
    /// For each event, from its time (on the replica running it) to its arrival here.
    lags: Vec<Duration>,
    deltas: usize,
    /// The watch ended with the run's final status.
    complete: bool,
}

fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// CPU time (user + system) a process has used so far, from `/proc`.
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields, in USER_HZ (100 per second on Linux).
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let llm = Arc::new(FakeLlm::start().await);
    llm.set_recording(false);
    llm.track_finishes();
    let text = moai_tests::fake_llm::text_of_tokens(args.tokens);
    let models: Vec<String> = (0..args.models)
        .map(|i| format!("bench/model-{i}"))
        .collect();
    for m in &models {
        llm.script(
            m,
            Script::new()
                .text(text.clone())
                .first_token_delay(Duration::from_millis(args.first_token_ms))
                .token_pace(Duration::from_millis(args.pace_ms)),
        );
    }
    let slowest = Duration::from_millis(args.first_token_ms)
        + Duration::from_millis(args.pace_ms)
            * u32::try_from(args.tokens.saturating_sub(1)).unwrap_or(0);

    let binary = args
        .server_bin
        .clone()
        .unwrap_or_else(moai_tests::process::server_binary);
    if !binary.exists() {
        bail!(
            "{} not found: build it with `cargo build --release -p moai-server`",
            binary.display()
        );
    }
    let database_url = std::env::var("MOAI_LOAD_DATABASE_URL").ok();
    if args.replicas > 1
        && !database_url
            .as_deref()
            .is_some_and(|u| u.starts_with("postgres"))
    {
        bail!(
            "--replicas {} needs MOAI_LOAD_DATABASE_URL on PostgreSQL",
            args.replicas
        );
    }
    if args.watch_from == WatchFrom::Other && args.replicas < 2 {
        bail!("--watch-from other needs --replicas 2 or more");
    }
    let mut config = format!(
        "[[llm.providers]]\nname = \"fake\"\nbase_url = \"{}\"\n{}",
        llm.base_url(),
        args.max_concurrency
            .map(|n| format!("max_concurrency = {n}\n"))
            .unwrap_or_default()
    );
    if args.replicas > 1 {
        let redis = std::env::var("MOAI_LOAD_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
        // Top-level keys go before the first table.
        config = format!(
            "redis_url = \"{redis}\"\nredis_key_prefix = \"moai-load-{}:\"\n{config}",
            uuid::Uuid::new_v4().simple()
        );
    }
    let dirs: Vec<tempfile::TempDir> = (0..args.replicas.max(1))
        .map(|_| match std::env::var_os("MOAI_LOAD_DIR") {
            Some(dir) => tempfile::tempdir_in(dir),
            None => tempfile::tempdir(),
        })
        .collect::<Result<_, _>>()?;
    let mut servers = Vec::new();
    for dir in &dirs {
        let port = moai_tests::process::free_port();
        let server = ServerProcess::start(ProcessOptions {
            binary: binary.clone(),
            data_dir: dir.path(),
            port,
            api_keys: format!("bench:{KEY}"),
            llm_base_url: llm.base_url(),
            database_url: database_url.clone(),
            config: Some(config.clone()),
        });
        servers.push((server, port));
    }
    let (server, port) = &servers[0];
    let pid = server.pid();
    let endpoint = Endpoint::from_shared(format!("http://127.0.0.1:{port}"))?;
    let watch_endpoint = match args.watch_from {
        WatchFrom::Other => {
            let (other, port) = &servers[1];
            other.channel().await;
            Some(Endpoint::from_shared(format!("http://127.0.0.1:{port}"))?)
        }
        WatchFrom::None => None,
    };
    let first = server.channel().await;
    let project = v1::project_service_client::ProjectServiceClient::new(InterceptedService::new(
        first,
        KeyAuth::new(KEY, None),
    ))
    .create_project(v1::CreateProjectRequest {
        // Unique, so runs can share one PostgreSQL database.
        name: format!("bench-{}", uuid::Uuid::new_v4().simple()),
        models: models.clone(),
        ..Default::default()
    })
    .await?
    .into_inner()
    .project
    .context("project")?;
    let project_id = Arc::new(project.id);

    println!(
        "moai-load: M={} models, upstream first token {} ms + {} tokens at {} ms (slowest model {:.0} ms), {} rounds per client after {} warm-up, {}",
        args.models,
        args.first_token_ms,
        args.tokens,
        args.pace_ms,
        ms(slowest),
        args.rounds,
        args.warmup,
        if args.stagger {
            "clients staggered over one round"
        } else {
            "clients in lockstep"
        }
    );
    println!(
        "{:>6} {:>8} {:>10} {:>10} {:>11} {:>11} {:>12} {:>12} {:>9} {:>8} {:>12} {:>11} {:>9}{}",
        "C",
        "rounds",
        "ttfd p50",
        "ttfd p99",
        "added p50",
        "added p99",
        "server p50",
        "server p99",
        "rounds/s",
        "failed",
        "server MiB",
        "server CPU",
        "load CPU",
        if watch_endpoint.is_some() {
            format!(
                " {:>10} {:>10} {:>10} {:>8}",
                "B lag p50", "B lag p99", "B delta/s", "B whole"
            )
        } else {
            String::new()
        }
    );
    for &c in &args.concurrency {
        // One HTTP/2 connection per 50 clients, as separate client machines would have.
        let mut channels: Vec<Channel> = Vec::new();
        let mut watch_channels: Vec<Channel> = Vec::new();
        for _ in 0..c.div_ceil(50) {
            channels.push(endpoint.connect().await?);
            if let Some(w) = &watch_endpoint {
                watch_channels.push(w.connect().await?);
            }
        }
        let lanes = Lanes {
            run: &channels,
            watch: &watch_channels,
        };
        // Warm-up: the server's connection pool to the upstream fills, as in
        // any long-running deployment; these rounds are not measured.
        if args.warmup > 0 {
            let warm = phase(&args, c, args.warmup, &lanes, &project_id, &llm, slowest).await?;
            let failed = warm.iter().filter(|s| s.failed).count();
            if failed > 0 {
                println!("{c:>6}: {failed} of {} warm-up rounds failed", warm.len());
            }
        }
        let started = Instant::now();
        let cpu_before = (cpu_time(pid), cpu_time(std::process::id()));
        let samples = phase(&args, c, args.rounds, &lanes, &project_id, &llm, slowest).await?;
        let wall = started.elapsed();
        let cpu_after = (cpu_time(pid), cpu_time(std::process::id()));
        let per_round = |before: Option<Duration>, after: Option<Duration>| match (before, after) {
            // Under 20 clock ticks the figure would be mostly rounding.
            (Some(b), Some(a))
                if !samples.is_empty() && a.saturating_sub(b) >= Duration::from_millis(200) =>
            {
                format!("{:.2}ms", ms(a.saturating_sub(b)) / samples.len() as f64)
            }
            _ => "n/a".to_owned(),
        };
        let server_cpu = per_round(cpu_before.0, cpu_after.0);
        let load_cpu = per_round(cpu_before.1, cpu_after.1);
        let mut ttfd: Vec<Duration> = samples.iter().map(|s| s.first_delta).collect();
        let mut added: Vec<Duration> = samples
            .iter()
            .map(|s| s.total.saturating_sub(slowest))
            .collect();
        let mut after_upstream: Vec<Duration> =
            samples.iter().filter_map(|s| s.after_upstream).collect();
        ttfd.sort();
        added.sort();
        after_upstream.sort();
        let failed = samples.iter().filter(|s| s.failed).count();
        let watched: Vec<&Watched> = samples.iter().filter_map(|s| s.watched.as_ref()).collect();
        let watch_figures = if watched.is_empty() {
            String::new()
        } else {
            let mut lags: Vec<Duration> = watched.iter().flat_map(|w| w.lags.clone()).collect();
            lags.sort();
            let relayed: usize = watched.iter().map(|w| w.deltas).sum();
            let whole = watched.iter().filter(|w| w.complete).count();
            format!(
                " {:>8.1}ms {:>8.1}ms {:>10.0} {:>8}",
                ms(percentile(&lags, 50.0)),
                ms(percentile(&lags, 99.0)),
                relayed as f64 / wall.as_secs_f64(),
                format!("{whole}/{}", watched.len()),
            )
        };
        println!(
            "{:>6} {:>8} {:>8.1}ms {:>8.1}ms {:>9.1}ms {:>9.1}ms {:>10.1}ms {:>10.1}ms {:>9.1} {:>8} {:>12} {:>11} {:>9}{}",
            c,
            samples.len(),
            ms(percentile(&ttfd, 50.0)),
            ms(percentile(&ttfd, 99.0)),
            ms(percentile(&added, 50.0)),
            ms(percentile(&added, 99.0)),
            ms(percentile(&after_upstream, 50.0)),
            ms(percentile(&after_upstream, 99.0)),
            samples.len() as f64 / wall.as_secs_f64(),
            failed,
            peak_rss_mib(pid).map_or("n/a".to_owned(), |m| format!("{m:.1}")),
            server_cpu,
            load_cpu,
            watch_figures,
        );
    }
    println!(
        "(ttfd: request to first delta; added: round time minus the slowest model's nominal upstream time; \
         server: from the slowest answer's last upstream byte to the round's end at the client; \
         server MiB: peak RSS so far; server CPU / load CPU: CPU time per round of the server and of this \
         generator with its fake upstream; B lag: from each event's time on the replica running it to its \
         arrival at the watcher on the other replica (events after the watch began); B delta/s: deltas the other replica relayed per second; \
         B whole: watches that ended with the run's final status)"
    );
    drop(servers);
    Ok(())
}

/// Connections to the replica running the load, and to the one watching it.
struct Lanes<'a> {
    run: &'a [Channel],
    watch: &'a [Channel],
}

/// C clients each running `rounds` rounds in a row; their samples.
async fn phase(
    args: &Args,
    c: usize,
    rounds: usize,
    lanes: &Lanes<'_>,
    project_id: &Arc<String>,
    llm: &Arc<FakeLlm>,
    slowest: Duration,
) -> anyhow::Result<Vec<Sample>> {
    let mut tasks = Vec::with_capacity(c);
    for i in 0..c {
        let channel = lanes.run[i / 50].clone();
        let watch_channel = lanes.watch.get(i / 50).cloned();
        let project_id = project_id.clone();
        let llm = llm.clone();
        let offset = if args.stagger {
            slowest.mul_f64(i as f64 / c as f64)
        } else {
            Duration::ZERO
        };
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(offset).await;
            let mut client = v1::discussion_service_client::DiscussionServiceClient::new(
                InterceptedService::new(channel, KeyAuth::new(KEY, None)),
            );
            let watcher = watch_channel.map(|ch| {
                v1::discussion_service_client::DiscussionServiceClient::new(
                    InterceptedService::new(ch, KeyAuth::new(KEY, None)),
                )
            });
            let mut samples = Vec::with_capacity(rounds);
            for r in 0..rounds {
                samples
                    .push(one_round(&mut client, watcher.clone(), &project_id, &llm, i, r).await);
            }
            samples
        }));
    }
    let mut samples = Vec::new();
    for t in tasks {
        samples.extend(t.await?);
    }
    Ok(samples)
}

type Client =
    v1::discussion_service_client::DiscussionServiceClient<InterceptedService<Channel, KeyAuth>>;

/// One OpenDiscussion call, read to its end (and watched from the other
/// replica when `watcher` is given).
async fn one_round(
    client: &mut Client,
    watcher: Option<Client>,
    project_id: &str,
    llm: &FakeLlm,
    client_no: usize,
    round: usize,
) -> Sample {
    let t0 = Instant::now();
    let mut first_delta = None;
    let mut failed = false;
    let mut watching: Option<tokio::task::JoinHandle<Watched>> = None;
    let question = format!("client {client_no} round {round}: what is the answer?");
    match client
        .open_discussion(v1::OpenDiscussionRequest {
            project_id: project_id.to_owned(),
            question: question.clone(),
        })
        .await
    {
        Ok(resp) => {
            let mut stream = resp.into_inner();
            while let Some(item) = stream.next().await {
                if let (Some(w), Ok(Some(e)), None) = (
                    watcher.as_ref(),
                    item.as_ref().map(|r| r.event.as_ref()),
                    watching.as_ref(),
                ) {
                    watching = Some(tokio::spawn(watch_elsewhere(
                        w.clone(),
                        e.discussion_id.clone(),
                    )));
                }
                match item.map(|r| r.event.and_then(|e| e.payload)) {
                    Ok(Some(Payload::MessageDelta(_))) if first_delta.is_none() => {
                        first_delta = Some(t0.elapsed());
                    }
                    Ok(Some(Payload::MessageFailed(_))) | Err(_) => failed = true,
                    _ => {}
                }
            }
        }
        Err(_) => failed = true,
    }
    let end = Instant::now();
    let watched = match watching {
        Some(w) => w.await.ok(),
        None => None,
    };
    Sample {
        watched,
        first_delta: first_delta.unwrap_or_else(|| t0.elapsed()),
        total: end.duration_since(t0),
        after_upstream: llm
            .finished_at(&question)
            .map(|u| end.saturating_duration_since(u)),
        failed: failed || first_delta.is_none(),
    }
}

/// Watches discussion `id` from its start on the other replica, timing each
/// event against the time the replica running it gave it.
async fn watch_elsewhere(mut client: Client, id: String) -> Watched {
    let mut watched = Watched {
        lags: Vec::new(),
        deltas: 0,
        complete: false,
    };
    let Ok(resp) = client
        .watch_discussion(v1::WatchDiscussionRequest {
            discussion_id: id,
            after_seq: 0,
        })
        .await
    else {
        return watched;
    };
    let wall = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
    };
    // Events from before the watch began are replayed, not relayed: their
    // lag would measure when the watch started.
    let began = wall();
    let mut stream = resp.into_inner();
    while let Some(Ok(item)) = stream.next().await {
        let Some(event) = item.event else { continue };
        let now = wall();
        if let Some(t) = &event.time {
            let at = Duration::new(
                u64::try_from(t.seconds).unwrap_or(0),
                u32::try_from(t.nanos).unwrap_or(0),
            );
            if at >= began {
                watched.lags.push(now.saturating_sub(at));
            }
        }
        match event.payload {
            Some(Payload::MessageDelta(_)) => watched.deltas += 1,
            Some(Payload::StatusChanged(s)) if s.status != v1::DiscussionStatus::Running as i32 => {
                watched.complete = true;
            }
            _ => {}
        }
    }
    watched
}
