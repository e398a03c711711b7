//! Bearer keys to principals. User keys name their principal; gateway keys
//! (the Telegram bot's) act for the end user named in `x-moai-user`.
//! Keys are compared in constant time and never logged.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::RngCore as _;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tonic::metadata::MetadataMap;

use crate::config::Settings;

/// Header a gateway key uses to name the end user it acts for.
pub const USER_HEADER: &str = "x-moai-user";
/// File in the data dir holding the generated local key.
pub const LOCAL_KEY_FILE: &str = "local.key";
/// Principal of the generated local key.
pub const LOCAL_PRINCIPAL: &str = "local";

/// Who is calling: the owner of projects and discussions.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Principal(String);

impl Principal {
    /// The principal's name as stored with what it owns.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a call was not authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing API key: send `authorization: Bearer <key>`")]
    Missing,
    #[error("invalid API key")]
    Invalid,
    #[error("a gateway key must name the end user in `x-moai-user` (such as telegram:12345)")]
    MissingUser,
    #[error("`x-moai-user` must look like <namespace>:<id>, such as telegram:12345")]
    BadUser,
    #[error("`x-moai-user` is only accepted with a gateway key")]
    UserHeaderNotAllowed,
    #[error("cannot prepare the local API key at {path}: {source}")]
    LocalKey {
        path: PathBuf,
        source: std::io::Error,
    },
}

struct Entry {
    name: String,
    key: SecretString,
}

/// The keys the server accepts.
pub struct KeyRing {
    users: Vec<Entry>,
    gateways: Vec<Entry>,
}

impl KeyRing {
    /// Builds the ring from settings. When no key is configured at all, a local
    /// key is read from (or created in) the data dir, readable only by its owner.
    pub fn from_settings(settings: &Settings) -> Result<Self, AuthError> {
        let mut users: Vec<Entry> = settings
            .api_keys
            .iter()
            .map(|(name, key)| Entry {
                name: name.clone(),
                key: key.clone(),
            })
            .collect();
        let gateways = settings
            .gateway_keys
            .iter()
            .map(|(name, key)| Entry {
                name: name.clone(),
                key: key.clone(),
            })
            .collect::<Vec<_>>();
        if users.is_empty() && gateways.is_empty() {
            let key = load_or_create_local_key(&settings.data_dir)?;
            users.push(Entry {
                name: LOCAL_PRINCIPAL.to_owned(),
                key,
            });
        }
        Ok(Self { users, gateways })
    }

    /// Maps a call's metadata to its principal.
    pub fn authenticate(&self, metadata: &MetadataMap) -> Result<Principal, AuthError> {
        let header = metadata
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .ok_or(AuthError::Missing)?;
        let presented = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or(AuthError::Missing)?
            .trim();
        if presented.is_empty() {
            return Err(AuthError::Missing);
        }
        let user_header = metadata.get(USER_HEADER).map(|v| v.to_str().unwrap_or(""));
        if let Some(entry) = find(&self.users, presented) {
            if user_header.is_some() {
                return Err(AuthError::UserHeaderNotAllowed);
            }
            return Ok(Principal(entry.name.clone()));
        }
        if find(&self.gateways, presented).is_some() {
            let user = user_header.ok_or(AuthError::MissingUser)?;
            return parse_gateway_user(user).map(Principal);
        }
        Err(AuthError::Invalid)
    }
}

/// Compares against every key without stopping early, so timing tells nothing
/// about which key (or how much of one) matched.
fn find<'a>(entries: &'a [Entry], presented: &str) -> Option<&'a Entry> {
    let mut found = None;
    for entry in entries {
        if bool::from(
            entry
                .key
                .expose_secret()
                .as_bytes()
                .ct_eq(presented.as_bytes()),
        ) {
            found = Some(entry);
        }
    }
    found
}

/// `namespace:id`, both parts short and plain, so a gateway user can never
/// collide with a configured principal (those contain no ':').
fn parse_gateway_user(user: &str) -> Result<String, AuthError> {
    let (ns, id) = user.split_once(':').ok_or(AuthError::BadUser)?;
    let plain = |s: &str, max: usize| {
        !s.is_empty()
            && s.len() <= max
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    if plain(ns, 32) && plain(id, 64) {
        Ok(format!("{ns}:{id}"))
    } else {
        Err(AuthError::BadUser)
    }
}

fn load_or_create_local_key(data_dir: &Path) -> Result<SecretString, AuthError> {
    let path = data_dir.join(LOCAL_KEY_FILE);
    let err = |source| AuthError::LocalKey {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => {
            return Ok(SecretString::from(text.trim().to_owned()));
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    std::fs::create_dir_all(data_dir).map_err(err)?;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let key: String = std::iter::once("moai_".to_owned())
        .chain(bytes.iter().map(|b| format!("{b:02x}")))
        .collect();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).map_err(err)?;
    writeln!(file, "{key}").map_err(err)?;
    tracing::info!(path = %path.display(), "created the local API key");
    Ok(SecretString::from(key))
}

/// Tonic interceptor that authenticates every call and stores its [`Principal`]
/// in the request extensions.
#[derive(Clone)]
pub struct AuthInterceptor(Arc<KeyRing>);

impl AuthInterceptor {
    /// Wraps a key ring.
    pub fn new(ring: Arc<KeyRing>) -> Self {
        Self(ring)
    }
}

impl tonic::service::Interceptor for AuthInterceptor {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        match self.0.authenticate(req.metadata()) {
            Ok(principal) => {
                tracing::Span::current().record("principal", principal.as_str());
                req.extensions_mut().insert(principal);
                Ok(req)
            }
            // The status for each refusal is chosen in `api::error`.
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> KeyRing {
        let mut s = Settings::default();
        s.api_keys.insert(
            "alice".into(),
            SecretString::from("alice-secret".to_owned()),
        );
        s.gateway_keys.insert(
            "telegram".into(),
            SecretString::from("gateway-secret".to_owned()),
        );
        KeyRing::from_settings(&s).expect("ring")
    }

    fn meta(pairs: &[(&'static str, &str)]) -> MetadataMap {
        let mut m = MetadataMap::new();
        for (k, v) in pairs {
            m.insert(*k, v.parse().expect("ascii"));
        }
        m
    }

    #[test]
    fn user_key_maps_to_its_principal() {
        let p = ring()
            .authenticate(&meta(&[("authorization", "Bearer alice-secret")]))
            .expect("ok");
        assert_eq!(p.as_str(), "alice");
    }

    #[test]
    fn gateway_acts_for_named_user_only_in_namespace_form() {
        let r = ring();
        let p = r
            .authenticate(&meta(&[
                ("authorization", "Bearer gateway-secret"),
                ("x-moai-user", "telegram:42"),
            ]))
            .expect("ok");
        assert_eq!(p.as_str(), "telegram:42");
        assert!(matches!(
            r.authenticate(&meta(&[
                ("authorization", "Bearer gateway-secret"),
                ("x-moai-user", "alice"),
            ])),
            Err(AuthError::BadUser)
        ));
        assert!(matches!(
            r.authenticate(&meta(&[("authorization", "Bearer gateway-secret")])),
            Err(AuthError::MissingUser)
        ));
    }

    #[test]
    fn a_gateway_may_act_for_a_telegram_group() {
        // The bot acts for a group (negative chat id) as its own namespace,
        // so a group's projects are apart from each member's.
        let p = ring()
            .authenticate(&meta(&[
                ("authorization", "Bearer gateway-secret"),
                ("x-moai-user", "telegram-group:-1001234567890"),
            ]))
            .expect("ok");
        assert_eq!(p.as_str(), "telegram-group:-1001234567890");
        assert_ne!(p.as_str(), "telegram:-1001234567890");
    }

    #[test]
    fn wrong_and_missing_keys_are_refused() {
        let r = ring();
        assert!(matches!(
            r.authenticate(&meta(&[("authorization", "Bearer nope")])),
            Err(AuthError::Invalid)
        ));
        assert!(matches!(
            r.authenticate(&meta(&[])),
            Err(AuthError::Missing)
        ));
    }

    #[test]
    fn local_key_is_created_once_with_owner_only_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Settings {
            data_dir: dir.path().to_owned(),
            ..Settings::default()
        };
        let first = KeyRing::from_settings(&s).expect("ring");
        let key = std::fs::read_to_string(dir.path().join(LOCAL_KEY_FILE)).expect("key file");
        let second = KeyRing::from_settings(&s).expect("ring again");
        let header = format!("Bearer {}", key.trim());
        assert_eq!(
            first
                .authenticate(&meta(&[("authorization", &header)]))
                .expect("ok")
                .as_str(),
            LOCAL_PRINCIPAL
        );
        assert!(
            second
                .authenticate(&meta(&[("authorization", &header)]))
                .is_ok()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(LOCAL_KEY_FILE))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
