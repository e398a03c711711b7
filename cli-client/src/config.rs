//! Where things are: the server address, the API key and its source, and the
//! config and data directories.

use std::path::PathBuf;

use crate::errors::CliError;

/// The API key and where it came from (never printed itself).
#[derive(Clone)]
pub struct ApiKey {
    secret: String,
    /// `--api-key / MOAI_API_KEY` or the key file's path.
    pub source: String,
}

impl ApiKey {
    /// A key from `source`.
    pub fn new(secret: &str, source: &str) -> Self {
        ApiKey {
            secret: secret.to_string(),
            source: source.to_string(),
        }
    }

    /// The key, for the authorization header only.
    pub fn expose(&self) -> &str {
        &self.secret
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKey(from {})", self.source)
    }
}

/// The user's config directory for moai: `MOAI_CONFIG_DIR`, else `<config dir>/moai`.
pub fn config_dir() -> PathBuf {
    dir_from_env("MOAI_CONFIG_DIR").unwrap_or_else(|| {
        dirs::config_dir()
            .unwrap_or_else(|| PathBuf::from("."))
            .join("moai")
    })
}

/// The server's data directory: `MOAI_DATA_DIR`, else `<data dir>/moai`.
pub fn data_dir() -> PathBuf {
    dir_from_env("MOAI_DATA_DIR").unwrap_or_else(|| {
        dirs::data_dir()
            .unwrap_or_else(|| PathBuf::from("."))
            .join("moai")
    })
}

fn dir_from_env(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The file in which a local server keeps the key it generated.
pub fn local_key_file() -> PathBuf {
    data_dir().join("local.key")
}

/// Finds the API key: the flag or `MOAI_API_KEY` (clap folds both into
/// `explicit`), else the local key file.
///
/// # Errors
/// [`CliError::NoKey`] when there is none, [`CliError::Io`] when the key file
/// exists but cannot be read.
pub fn resolve_key(explicit: Option<&str>) -> Result<ApiKey, CliError> {
    if let Some(key) = explicit.map(str::trim).filter(|k| !k.is_empty()) {
        let source = if std::env::var("MOAI_API_KEY").is_ok_and(|v| v.trim() == key) {
            "MOAI_API_KEY"
        } else {
            "--api-key"
        };
        return Ok(ApiKey {
            secret: key.to_string(),
            source: source.to_string(),
        });
    }
    let path = local_key_file();
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => Ok(ApiKey {
            secret: text.trim().to_string(),
            source: path.display().to_string(),
        }),
        Ok(_) => Err(CliError::NoKey {
            why: format!("the key file {} is empty", path.display()),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(no_key_file(&path)),
        Err(e) => Err(CliError::io(
            format!("cannot read the API key file {}", path.display()),
            e,
        )),
    }
}

/// Why there is no local key file: a server never started with this data
/// dir here, or the local server runs with configured keys and writes none.
pub fn no_key_file(path: &std::path::Path) -> CliError {
    let never_started = path
        .parent()
        .is_none_or(|dir| !dir.join("moai.db").exists());
    let why = if never_started {
        format!(
            "{} does not exist because moai-server has not started on this machine with this data dir (MOAI_DATA_DIR); it writes its key there on first start",
            path.display()
        )
    } else {
        format!(
            "the moai-server of this data dir runs with configured keys (MOAI_API_KEYS), so it wrote no {}",
            path.display()
        )
    };
    CliError::NoKey { why }
}

/// Checks and normalizes the server address (a bare `host:port` gets
/// `http://`; `https://` connects over TLS).
///
/// # Errors
/// [`CliError::Usage`] for an address that is not a URL this client can use.
pub fn server_url(raw: &str) -> Result<String, CliError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(CliError::Usage(
            "--server is empty; use e.g. http://127.0.0.1:50051".into(),
        ));
    }
    let url = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("http://{raw}")
    };
    let url = url.trim_end_matches('/').to_string();
    let Some(scheme) = ["http://", "https://"]
        .into_iter()
        .find(|scheme| url.starts_with(scheme))
    else {
        return Err(CliError::Usage(format!(
            "{url}: the server address must start with http:// or https://"
        )));
    };
    if url.len() > scheme.len() && http_uri_is_valid(&url) {
        Ok(url)
    } else {
        Err(CliError::Usage(format!(
            "{raw} is not a valid server address; use e.g. http://127.0.0.1:50051"
        )))
    }
}

fn http_uri_is_valid(url: &str) -> bool {
    url.parse::<tonic::codegen::http::Uri>()
        .is_ok_and(|u| u.host().is_some_and(|h| !h.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_normalized() {
        assert_eq!(
            server_url("localhost:50051").expect("ok"),
            "http://localhost:50051"
        );
        assert_eq!(
            server_url("http://10.0.0.1:1/").expect("ok"),
            "http://10.0.0.1:1"
        );
        assert_eq!(
            server_url("https://moai.example.org/").expect("ok"),
            "https://moai.example.org"
        );
        assert!(server_url("https://").is_err());
        assert!(server_url("ftp://x").is_err());
        assert!(server_url("").is_err());
        assert!(server_url("http://").is_err());
    }

    #[test]
    fn the_key_is_never_printed() {
        let key = ApiKey {
            secret: "s3cret".into(),
            source: "--api-key".into(),
        };
        assert!(!format!("{key:?}").contains("s3cret"));
    }
}
