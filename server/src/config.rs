//! Typed settings: a TOML file (`--config`) overlaid by the environment
//! variables of the contract, which win.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use crate::budget::{BudgetConfigError, BudgetSettings};
use crate::llm::LlmSettings;
use crate::tls::TlsSettings;

/// Everything the server reads at start-up.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Where the SQLite file and the generated local key live.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; `None` means SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// User keys: principal name -> key.
    pub api_keys: BTreeMap<String, SecretString>,
    /// Gateway keys: gateway name -> key; may act for users named in `x-moai-user`.
    pub gateway_keys: BTreeMap<String, SecretString>,
    /// Input bounds and run tuning.
    pub limits: Limits,
    /// Model providers, aliases, timeouts and retries.
    pub llm: LlmSettings,
    /// Spend limits per principal, namespace and discussion.
    pub budgets: BudgetSettings,
    /// Principals that may read everyone's usage.
    pub admin_principals: Vec<String>,
    /// The HTTP listener (OpenAI-compatible API, MCP, `/metrics`, `/healthz`);
    /// `None` (`off` in TOML and `MOAI_HTTP_LISTEN`) serves none.
    #[serde(deserialize_with = "deserialize_http_listen")]
    pub http_listen: Option<SocketAddr>,
    /// Browser origins (such as `https://app.example.com`) allowed to call
    /// the gRPC port over gRPC-Web; empty (the default) allows no cross-origin call.
    pub grpc_web_origins: Vec<String>,
    /// TLS for the listeners (off unless a certificate is configured).
    pub tls: TlsSettings,
    /// Redis for live events and stops across replicas (`redis://` or `rediss://`).
    pub redis_url: Option<SecretString>,
    /// Prefix of the relay's Redis keys and channels.
    pub redis_key_prefix: String,
    /// PEM CA bundle a `rediss://` server is verified with, instead of the system roots.
    pub redis_ca_cert: Option<PathBuf>,
}

/// Default address of the HTTP listener.
pub const DEFAULT_HTTP_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 50080);

/// `off`, or an address such as `127.0.0.1:50080`.
fn parse_http_listen(text: &str) -> Option<Option<SocketAddr>> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") {
        Some(None)
    } else {
        text.parse().ok().map(Some)
    }
}

fn deserialize_http_listen<'de, D>(d: D) -> Result<Option<SocketAddr>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let text = String::deserialize(d)?;
    parse_http_listen(&text).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "http_listen {text:?} is neither `off` nor an address such as 127.0.0.1:50080"
        ))
    })
}

/// Bounds on input and on the resources one run or subscriber may hold.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest question, topic or mention text, in bytes.
    pub max_text_bytes: usize,
    /// Largest project system prompt, in bytes.
    pub max_system_prompt_bytes: usize,
    /// Most models in one project.
    pub max_models: usize,
    /// Most rounds one StartDiscussion may ask for.
    pub max_rounds: u32,
    /// Rounds when a StartDiscussion asks for 0.
    pub default_rounds: u32,
    /// Events a subscriber may fall behind before it is dropped.
    pub subscriber_buffer: usize,
    /// How often a streaming answer's partial text is written to the store, in ms.
    pub flush_interval_ms: u64,
    /// How long in-flight calls get to finish on shutdown, in seconds.
    pub shutdown_grace_secs: u64,
    /// A run's lease in the store; a RUNNING discussion whose lease lapsed is INTERRUPTED.
    pub run_lease_secs: u64,
    /// Largest request body the HTTP listener reads, in bytes; larger ones
    /// are refused before they are parsed.
    pub max_http_body_bytes: usize,
    /// How long a cancelled run (stop, project delete, the end of the
    /// shutdown grace) gets to store what it has and close, in seconds.
    pub stop_wait_secs: u64,
    /// Seed of the shuffle that gives reviewers their anonymous labels; unset
    /// (the default) draws a fresh one at start. Tests fix it to be repeatable.
    pub review_seed: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_text_bytes: 32 * 1024,
            max_system_prompt_bytes: 16 * 1024,
            max_models: 16,
            max_rounds: 10,
            default_rounds: 3,
            subscriber_buffer: 1024,
            flush_interval_ms: 1000,
            shutdown_grace_secs: 10,
            run_lease_secs: 30,
            max_http_body_bytes: 1024 * 1024,
            stop_wait_secs: 10,
            review_seed: None,
        }
    }
}

impl Limits {
    /// `flush_interval_ms` as a duration.
    pub fn flush_interval(&self) -> Duration {
        Duration::from_millis(self.flush_interval_ms.max(10))
    }

    /// `shutdown_grace_secs` as a duration.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    /// `run_lease_secs` as a duration.
    pub fn run_lease(&self) -> Duration {
        Duration::from_secs(self.run_lease_secs.max(1))
    }

    /// `stop_wait_secs` as a duration.
    pub fn stop_wait(&self) -> Duration {
        Duration::from_secs(self.stop_wait_secs)
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            data_dir: default_data_dir(),
            database_url: None,
            api_keys: BTreeMap::new(),
            gateway_keys: BTreeMap::new(),
            limits: Limits::default(),
            llm: LlmSettings::default(),
            budgets: BudgetSettings::default(),
            admin_principals: Vec::new(),
            http_listen: Some(DEFAULT_HTTP_LISTEN),
            grpc_web_origins: Vec::new(),
            tls: TlsSettings::default(),
            redis_url: None,
            redis_key_prefix: "moai:".into(),
            redis_ca_cert: None,
        }
    }
}

/// `<data dir>/moai`: `$XDG_DATA_HOME/moai` (`~/.local/share/moai`) on Linux,
/// the platform's equivalent elsewhere; the CLI looks in the same place, the
/// same way (the `dirs` crate), for the local key.
pub fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("moai")
}

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("invalid {name}: {reason}")]
    Env { name: &'static str, reason: String },
    #[error(transparent)]
    Budget(#[from] BudgetConfigError),
}

impl Settings {
    /// Reads the TOML file at `path` (if any), then applies the environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let base = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                toml::from_str(&text).map_err(|source| ConfigError::Parse {
                    path: path.to_owned(),
                    source,
                })?
            }
            None => Settings::default(),
        };
        base.with_env(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// Applies the contract's environment variables, read through `var`.
    pub fn with_env(mut self, var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        if let Some(listen) = var("MOAI_LISTEN") {
            self.listen = listen.parse().map_err(|_| ConfigError::Env {
                name: "MOAI_LISTEN",
                reason: format!("{listen:?} is not an address such as 127.0.0.1:50051"),
            })?;
        }
        if let Some(listen) = var("MOAI_HTTP_LISTEN") {
            self.http_listen = parse_http_listen(&listen).ok_or_else(|| ConfigError::Env {
                name: "MOAI_HTTP_LISTEN",
                reason: format!(
                    "{listen:?} is neither `off` nor an address such as 127.0.0.1:50080"
                ),
            })?;
        }
        if let Some(origins) = var("MOAI_GRPC_WEB_ORIGINS") {
            self.grpc_web_origins = origins
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(dir) = var("MOAI_DATA_DIR") {
            self.data_dir = PathBuf::from(dir);
        }
        if let Some(url) = var("DATABASE_URL") {
            self.database_url = Some(url);
        }
        for (name, file) in [
            ("MOAI_TLS_CERT", &mut self.tls.cert),
            ("MOAI_TLS_KEY", &mut self.tls.key),
            ("MOAI_TLS_CLIENT_CA", &mut self.tls.client_ca),
        ] {
            if let Some(path) = var(name) {
                *file = Some(PathBuf::from(path));
            }
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(ConfigError::Env {
                name: "MOAI_TLS_CERT",
                reason: "TLS needs both MOAI_TLS_CERT and MOAI_TLS_KEY ([tls] cert and key)".into(),
            });
        }
        if self.tls.client_ca.is_some() && !self.tls.enabled() {
            return Err(ConfigError::Env {
                name: "MOAI_TLS_CLIENT_CA",
                reason: "client certificates need TLS: set MOAI_TLS_CERT and MOAI_TLS_KEY too"
                    .into(),
            });
        }
        if let Some(url) = var("MOAI_REDIS_URL") {
            self.redis_url = Some(SecretString::from(url));
        }
        if let Some(prefix) = var("MOAI_REDIS_KEY_PREFIX") {
            self.redis_key_prefix = prefix;
        }
        if let Some(path) = var("MOAI_REDIS_CA_CERT") {
            self.redis_ca_cert = Some(PathBuf::from(path));
        }
        if let Some(url) = &self.redis_url {
            let url = url.expose_secret();
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return Err(ConfigError::Env {
                    name: "MOAI_REDIS_URL",
                    reason: "expected a redis:// or rediss:// (TLS) URL".into(),
                });
            }
        }
        if let Some(keys) = var("MOAI_API_KEYS") {
            self.api_keys = parse_key_list("MOAI_API_KEYS", &keys)?;
        }
        if let Some(keys) = var("MOAI_GATEWAY_KEYS") {
            self.gateway_keys = parse_key_list("MOAI_GATEWAY_KEYS", &keys)?;
        }
        if self.llm.providers.is_empty() {
            self.llm.providers = LlmSettings::default().providers;
        }
        if let Some(default_provider) = self.llm.providers.first_mut() {
            if let Some(key) = var("OPENROUTER_API_KEY") {
                default_provider.api_key = Some(SecretString::from(key));
            }
            if let Some(url) = var("MOAI_LLM_BASE_URL") {
                default_provider.base_url = url;
            }
            if let Some(key) = var("MOAI_LLM_API_KEY") {
                default_provider.api_key = Some(SecretString::from(key));
            }
        }
        for (var, keys) in [
            ("api_keys", &self.api_keys),
            ("gateway_keys", &self.gateway_keys),
        ] {
            for (name, key) in keys {
                if key.expose_secret().trim().len() < 8 {
                    return Err(ConfigError::Env {
                        name: if var == "api_keys" {
                            "MOAI_API_KEYS"
                        } else {
                            "MOAI_GATEWAY_KEYS"
                        },
                        reason: format!(
                            "the key of {name:?} ({var}) must have 8 or more characters"
                        ),
                    });
                }
            }
        }
        for name in self.api_keys.keys() {
            if name.is_empty() || name.contains(':') {
                return Err(ConfigError::Env {
                    name: "MOAI_API_KEYS",
                    reason: format!("principal {name:?} must be non-empty and contain no ':'"),
                });
            }
        }
        self.budgets.validate(self.gateway_keys.keys())?;
        for (model, price) in &self.llm.prices {
            if !price.is_valid() {
                return Err(BudgetConfigError {
                    key: format!("llm.prices.{model:?}"),
                    reason: "prices must be non-negative amounts of USD per million tokens".into(),
                }
                .into());
            }
        }
        Ok(self)
    }
}

/// Parses `name:key,name:key`.
fn parse_key_list(
    var: &'static str,
    text: &str,
) -> Result<BTreeMap<String, SecretString>, ConfigError> {
    let mut out = BTreeMap::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, key) = item.split_once(':').ok_or_else(|| ConfigError::Env {
            name: var,
            reason: "expected name:key pairs separated by commas".into(),
        })?;
        let (name, key) = (name.trim(), key.trim());
        if name.is_empty() || key.len() < 8 {
            return Err(ConfigError::Env {
                name: var,
                reason: format!(
                    "entry for {name:?} needs a name and a key of 8 or more characters"
                ),
            });
        }
        out.insert(name.to_owned(), SecretString::from(key.to_owned()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn environment_wins_over_file() {
        let file: Settings = toml::from_str("listen = \"127.0.0.1:7000\"\n").expect("parses");
        let s = file
            .with_env(env(&[
                ("MOAI_LISTEN", "127.0.0.1:7001"),
                ("MOAI_API_KEYS", "alice:alice-key-1,bob:bob-key-22"),
                ("MOAI_LLM_BASE_URL", "http://127.0.0.1:9/v1"),
            ]))
            .expect("valid");
        assert_eq!(s.listen.port(), 7001);
        assert_eq!(s.api_keys["bob"].expose_secret(), "bob-key-22");
        assert_eq!(s.llm.providers[0].base_url, "http://127.0.0.1:9/v1");
    }

    #[test]
    fn the_example_config_file_parses() {
        let text = include_str!("../../moai.example.toml");
        let s: Settings = toml::from_str(text).expect("moai.example.toml is valid");
        assert_eq!(s.llm.providers.len(), 2);
        assert_eq!(s.llm.resolve_alias("gpt"), "openai/gpt-4o");
        assert_eq!(s.limits.max_rounds, 10);
    }

    #[test]
    fn http_listen_defaults_parses_and_turns_off() {
        assert_eq!(Settings::default().http_listen, Some(DEFAULT_HTTP_LISTEN));
        let file: Settings = toml::from_str("http_listen = \"off\"\n").expect("parses");
        assert_eq!(file.http_listen, None);
        let s = Settings::default()
            .with_env(env(&[
                ("MOAI_HTTP_LISTEN", "127.0.0.1:7080"),
                (
                    "MOAI_GRPC_WEB_ORIGINS",
                    "https://a.example, http://localhost:3000",
                ),
            ]))
            .expect("valid");
        assert_eq!(s.http_listen.map(|a| a.port()), Some(7080));
        assert_eq!(
            s.grpc_web_origins,
            ["https://a.example", "http://localhost:3000"]
        );
        let off = Settings::default()
            .with_env(env(&[("MOAI_HTTP_LISTEN", "OFF")]))
            .expect("valid");
        assert_eq!(off.http_listen, None);
        let err = Settings::default()
            .with_env(env(&[("MOAI_HTTP_LISTEN", "nowhere")]))
            .expect_err("not an address");
        assert!(err.to_string().contains("MOAI_HTTP_LISTEN"));
    }

    #[test]
    fn tls_files_come_from_the_environment_and_need_both_halves() {
        let s = Settings::default()
            .with_env(env(&[
                ("MOAI_TLS_CERT", "/etc/moai/cert.pem"),
                ("MOAI_TLS_KEY", "/etc/moai/key.pem"),
                ("MOAI_TLS_CLIENT_CA", "/etc/moai/team-ca.pem"),
            ]))
            .expect("valid");
        assert_eq!(s.tls.cert.as_deref(), Some(Path::new("/etc/moai/cert.pem")));
        assert_eq!(s.tls.key.as_deref(), Some(Path::new("/etc/moai/key.pem")));
        assert_eq!(
            s.tls.client_ca.as_deref(),
            Some(Path::new("/etc/moai/team-ca.pem"))
        );
        let err = Settings::default()
            .with_env(env(&[("MOAI_TLS_CERT", "/etc/moai/cert.pem")]))
            .expect_err("no key");
        assert!(err.to_string().contains("MOAI_TLS_KEY"), "{err}");
        let err = Settings::default()
            .with_env(env(&[("MOAI_TLS_CLIENT_CA", "/etc/moai/team-ca.pem")]))
            .expect_err("no server certificate");
        assert!(err.to_string().contains("MOAI_TLS_CERT"), "{err}");
    }

    #[test]
    fn the_redis_url_comes_from_the_file_or_the_environment() {
        let file: Settings =
            toml::from_str("redis_url = \"redis://127.0.0.1:6379\"\n").expect("parses");
        let s = file.with_env(env(&[])).expect("valid");
        assert_eq!(
            s.redis_url.as_ref().map(|u| u.expose_secret().to_owned()),
            Some("redis://127.0.0.1:6379".to_owned())
        );
        assert_eq!(s.redis_key_prefix, "moai:");
        let s = Settings::default()
            .with_env(env(&[
                ("MOAI_REDIS_URL", "rediss://redis.internal:6380"),
                ("MOAI_REDIS_CA_CERT", "/etc/moai/redis-ca.pem"),
            ]))
            .expect("valid");
        assert!(s.redis_url.is_some());
        assert_eq!(
            s.redis_ca_cert.as_deref(),
            Some(Path::new("/etc/moai/redis-ca.pem"))
        );
        let err = Settings::default()
            .with_env(env(&[("MOAI_REDIS_URL", "http://127.0.0.1:6379")]))
            .expect_err("not redis");
        assert!(err.to_string().contains("MOAI_REDIS_URL"));
    }

    #[test]
    fn malformed_key_list_is_refused() {
        let err = Settings::default()
            .with_env(env(&[("MOAI_API_KEYS", "alice")]))
            .expect_err("no key");
        assert!(err.to_string().contains("MOAI_API_KEYS"));
    }

    #[test]
    fn empty_keys_in_the_file_are_refused() {
        let file: Settings = toml::from_str("[api_keys]\nalice = \"\"\n").expect("parses");
        assert!(file.with_env(env(&[])).is_err());
    }

    #[test]
    fn principal_with_colon_is_refused() {
        let file: Settings =
            toml::from_str("[api_keys]\n\"telegram:1\" = \"some-long-key\"\n").expect("parses");
        let err = file.with_env(env(&[])).expect_err("colon");
        assert!(err.to_string().contains("no ':'"));
    }
}
