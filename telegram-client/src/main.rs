//! `moai-telegram`: reads its settings from the environment and runs the bot.

use std::{path::PathBuf, time::Duration};

use anyhow::Context;
use clap::Parser;
use moai_proto::tls::ClientTls;
use moai_telegram::{
    Allowlist, ChatAllowlist, Config,
    config::{DEFAULT_GROUP_MESSAGES_PER_MINUTE, DEFAULT_SERVER},
};
use secrecy::SecretString;

/// The moai Telegram bot: roundtable discussions between AI models, in a chat.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// The bot token from @BotFather.
    #[arg(long, env = "TELOXIDE_TOKEN", hide_env_values = true)]
    token: String,
    /// Bot API base URL (default: Telegram's).
    #[arg(long, env = "MOAI_TELEGRAM_API_URL")]
    api_url: Option<url::Url>,
    /// Address of the moai server (http:// or https://).
    #[arg(long, env = "MOAI_SERVER", default_value = DEFAULT_SERVER)]
    server: String,
    /// PEM bundle of extra CAs to trust for an https:// server (e.g. a private CA).
    #[arg(long, env = "MOAI_CA_CERT", value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// PEM client certificate, for a server that asks for one.
    #[arg(
        long,
        env = "MOAI_TLS_CLIENT_CERT",
        value_name = "FILE",
        requires = "tls_client_key"
    )]
    tls_client_cert: Option<PathBuf>,
    /// PEM key of the client certificate.
    #[arg(
        long,
        env = "MOAI_TLS_CLIENT_KEY",
        value_name = "FILE",
        requires = "tls_client_cert"
    )]
    tls_client_key: Option<PathBuf>,
    /// The gateway key the bot acts for its users with.
    #[arg(long, env = "MOAI_API_KEY", hide_env_values = true)]
    api_key: String,
    /// Comma-separated Telegram user ids allowed to use the bot anywhere;
    /// with MOAI_TELEGRAM_ALLOWED_CHATS empty too, it refuses everyone.
    #[arg(long, env = "MOAI_TELEGRAM_ALLOWED_USERS", default_value = "")]
    allowed_users: String,
    /// Comma-separated group chat ids (negative) whose members may all use
    /// the bot in that group; the group shares one set of projects.
    #[arg(long, env = "MOAI_TELEGRAM_ALLOWED_CHATS", default_value = "")]
    allowed_chats: String,
    /// File keeping each chat's current project and discussion
    /// (default: telegram-state.json in MOAI_DATA_DIR or the user's data directory).
    #[arg(long, env = "MOAI_TELEGRAM_STATE")]
    state: Option<PathBuf>,
    /// Directory of moai's data, where the state file goes by default.
    #[arg(long, env = "MOAI_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Long-polling timeout of getUpdates, in seconds.
    #[arg(long, env = "MOAI_TELEGRAM_POLL_TIMEOUT", default_value_t = 10)]
    poll_timeout: u64,
    /// Shortest time between two edits of one message in a private chat, in milliseconds.
    #[arg(long, env = "MOAI_TELEGRAM_EDIT_INTERVAL_MS", default_value_t = 1000)]
    edit_interval_ms: u64,
    /// Messages a minute the bot sends to one group at most (Telegram allows about 20);
    /// the answers streaming there at once share them.
    #[arg(long, env = "MOAI_TELEGRAM_GROUP_MESSAGES_PER_MINUTE", default_value_t = DEFAULT_GROUP_MESSAGES_PER_MINUTE)]
    group_messages_per_minute: u32,
    /// On SIGTERM or Ctrl-C, how long the answers being shown may go on to
    /// their end, in seconds; answers still coming then get a last edit and
    /// are finished after a restart.
    #[arg(long, env = "MOAI_TELEGRAM_SHUTDOWN_GRACE", default_value_t = 10)]
    shutdown_grace: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    moai_proto::tls::install_crypto_provider();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    anyhow::ensure!(!args.token.trim().is_empty(), "TELOXIDE_TOKEN is empty");
    anyhow::ensure!(!args.api_key.trim().is_empty(), "MOAI_API_KEY is empty");
    let state_path = args
        .state
        .unwrap_or_else(|| Config::default_state_path(args.data_dir));
    let mut config = Config::new(
        SecretString::from(args.token),
        SecretString::from(args.api_key),
        state_path,
    );
    config.api_url = args.api_url;
    config.server = args.server;
    config.tls = ClientTls {
        ca_cert: args.ca_cert,
        client_cert: args.tls_client_cert,
        client_key: args.tls_client_key,
    };
    config.allowlist = Allowlist::parse(&args.allowed_users)?;
    config.allowed_chats = ChatAllowlist::parse(&args.allowed_chats)?;
    config.group_messages_per_minute = args.group_messages_per_minute;
    config.shutdown_grace = Duration::from_secs(args.shutdown_grace);
    config.poll_timeout = Duration::from_secs(args.poll_timeout);
    config.edit_interval = Duration::from_millis(args.edit_interval_ms);

    moai_telegram::run(config, stop_signal())
        .await
        .context("the bot stopped")
}

/// Completes on SIGTERM (how service managers stop programs) or Ctrl-C.
async fn stop_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}
