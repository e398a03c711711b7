//! A stand-in OpenAI-compatible model API on loopback, for trying moai
//! without an API key. `moai demo` starts it with `--demo`; by hand:
//!
//! `moai-fake-llm --demo --port 8099`, then
//! `MOAI_LLM_BASE_URL=http://127.0.0.1:8099/v1 MOAI_LLM_API_KEY=none moai-server`.

use std::time::Duration;

use clap::Parser;
use moai_fake_llm::{FakeLlm, Script};

/// Serves /v1/chat/completions and /v1/models on 127.0.0.1.
#[derive(Parser, Debug)]
struct Args {
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 8099)]
    port: u16,
    /// Delay before each answer's first token, in ms.
    #[arg(long, default_value_t = 400)]
    first_token_ms: u64,
    /// Delay between tokens, in ms.
    #[arg(long, default_value_t = 40)]
    pace_ms: u64,
    /// Give each model its own voice, answering the question and the last
    /// speaker (without it: `Answer from <model>: <question>`).
    #[arg(long)]
    demo: bool,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let llm = FakeLlm::start_on(args.port).await;
    llm.set_recording(false);
    llm.set_demo_voices(args.demo);
    llm.default_script(
        Script::new()
            .first_token_delay(Duration::from_millis(args.first_token_ms))
            .token_pace(Duration::from_millis(args.pace_ms)),
    );
    for model in ["demo/alpha", "demo/beta", "demo/gamma"] {
        llm.register_model(model);
    }
    println!("fake model API at {} (Ctrl-C to stop)", llm.base_url());
    wait_for_stop().await;
}

/// Ctrl-C, or SIGTERM (how `moai demo` and service managers stop it).
async fn wait_for_stop() {
    #[cfg(unix)]
    if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        return;
    }
    let _ = tokio::signal::ctrl_c().await;
}
