//! What can go wrong, as one enum, and the exit code of each class.

use tonic::{Code, Status};

/// The exit codes, as `moai --help` lists them.
pub const EXIT_CODES_HELP: &str = "\
EXIT CODES:
    0  success (also a round in which only some models failed; they are named)
    1  unexpected error (server-side failure, I/O, bad server response)
    2  usage error: bad arguments, or no current project/discussion
    3  server unreachable, a failed TLS handshake, or the connection broke mid-run (check --server / MOAI_SERVER)
    4  not authenticated: missing or rejected API key
    5  not found: no such project, discussion or model
    6  invalid input rejected by the server (empty or too long text, unknown model)
    7  not possible now: no models, a run in progress, a stopped discussion, a limit hit
    8  not supported by this server yet (UNIMPLEMENTED)
    9  every model of the run failed
  130  detached with Ctrl-C or SIGTERM (the run goes on; `moai watch` re-attaches)";

/// Exit code of each error class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// 0.
    Success = 0,
    /// 1.
    Internal = 1,
    /// 2.
    Usage = 2,
    /// 3.
    Unreachable = 3,
    /// 4.
    Unauthenticated = 4,
    /// 5.
    NotFound = 5,
    /// 6.
    InvalidInput = 6,
    /// 7.
    Precondition = 7,
    /// 8.
    Unimplemented = 8,
    /// 9.
    AllFailed = 9,
    /// 130.
    Detached = 130,
}

impl ExitCode {
    /// The process exit status.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// An error the CLI reports as one line on stderr.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad use of the command line found after parsing.
    #[error("{0}")]
    Usage(String),

    /// The server could not be reached.
    #[error(
        "cannot reach the moai server at {server} ({reason}); is moai-server running? Set --server or MOAI_SERVER"
    )]
    Unreachable {
        /// The address tried.
        server: String,
        /// Why, in a few words.
        reason: String,
    },

    /// The server was reached but the TLS handshake failed.
    #[error("cannot reach the moai server at {server} over TLS: {failure}")]
    Tls {
        /// The address tried.
        server: String,
        /// What went wrong and what to do.
        failure: moai_proto::tls::TlsFailure,
    },

    /// The event stream broke after the run had started; the run goes on.
    #[error(
        "lost the connection to {server} ({reason}); the run goes on on the server: re-attach with `moai watch {discussion} --after {seq}{server_flag}`"
    )]
    StreamLost {
        /// The server address.
        server: String,
        /// Why, in a few words.
        reason: String,
        /// ` --server <URL>` when not the default one.
        server_flag: String,
        /// The discussion being followed.
        discussion: String,
        /// The last seq seen.
        seq: u64,
    },

    /// No API key anywhere (looked for only once the server answered).
    #[error("no API key: pass --api-key or set MOAI_API_KEY; {why}")]
    NoKey {
        /// Why the local key file gives none, in a few words.
        why: String,
    },

    /// The server refused the key.
    #[error(
        "the server rejected the API key from {source_name} ({message}); check --api-key / MOAI_API_KEY"
    )]
    Unauthenticated {
        /// Where the key came from.
        source_name: String,
        /// The server's message.
        message: String,
    },

    /// Something does not exist.
    #[error("{0}")]
    NotFound(String),

    /// The server rejected the input.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// Not possible in the current state.
    #[error("{0}")]
    Precondition(String),

    /// The server does not implement the call.
    #[error(
        "this server does not support `{command}` yet ({rpc} is UNIMPLEMENTED); upgrade moai-server"
    )]
    Unimplemented {
        /// The CLI command.
        command: String,
        /// The RPC.
        rpc: String,
    },

    /// Every model of the run failed.
    #[error("every model failed: {0}")]
    AllFailed(String),

    /// Any other server status.
    #[error("the server failed ({code:?}): {message}")]
    Server {
        /// The gRPC code.
        code: Code,
        /// The server's message.
        message: String,
    },

    /// Local I/O.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },

    /// Something unexpected that is not the user's fault.
    #[error("{0}")]
    Internal(String),
}

impl CliError {
    /// The exit code of this error's class.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Usage(_) => ExitCode::Usage,
            CliError::Unreachable { .. } | CliError::Tls { .. } | CliError::StreamLost { .. } => {
                ExitCode::Unreachable
            }
            CliError::NoKey { .. } | CliError::Unauthenticated { .. } => ExitCode::Unauthenticated,
            CliError::NotFound(_) => ExitCode::NotFound,
            CliError::InvalidInput(_) => ExitCode::InvalidInput,
            CliError::Precondition(_) => ExitCode::Precondition,
            CliError::Unimplemented { .. } => ExitCode::Unimplemented,
            CliError::AllFailed(_) => ExitCode::AllFailed,
            CliError::Server { .. } | CliError::Io { .. } | CliError::Internal(_) => {
                ExitCode::Internal
            }
        }
    }

    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        CliError::Io {
            context: context.into(),
            source,
        }
    }
}

/// What a call was, for messages about its failure.
#[derive(Debug, Clone)]
pub struct CallContext<'a> {
    /// The server address.
    pub server: &'a str,
    /// Where the key came from.
    pub key_source: &'a str,
    /// The CLI command, such as `summarize`.
    pub command: &'a str,
    /// The RPC, such as `SummarizeDiscussion`.
    pub rpc: &'a str,
}

/// Maps a gRPC status to the CLI error of its class.
pub fn from_status(status: &Status, call: &CallContext<'_>) -> CliError {
    // With TLS 1.3 a server's refusal of the client certificate arrives after
    // the client's side of the handshake, so with the first call.
    if let Some(failure) = moai_proto::tls::tls_failure(status) {
        return CliError::Tls {
            server: call.server.to_string(),
            failure,
        };
    }
    let message = one_line(status.message());
    // A status with a source was made by this client's transport, not sent
    // by the server: the connection failed. A plaintext client talking to a
    // TLS port sees exactly that (the server hangs up on its HTTP/2 preface).
    // A call cancelled under the client means the same: under load, a TLS 1.3
    // server's refusal of the client certificate can arrive as just that.
    let transport = std::error::Error::source(status).is_some();
    if (transport && matches!(status.code(), Code::Internal | Code::Unknown))
        || status.code() == Code::Cancelled
    {
        let hint = if call.server.starts_with("http://") {
            "; if the server uses TLS, use https://"
        } else if std::env::var_os("MOAI_TLS_CLIENT_CERT").is_none() {
            "; if the server requires a client certificate, set MOAI_TLS_CLIENT_CERT and MOAI_TLS_CLIENT_KEY"
        } else {
            ""
        };
        return CliError::Unreachable {
            server: call.server.to_string(),
            reason: format!("{message}{hint}"),
        };
    }
    match status.code() {
        Code::Unauthenticated | Code::PermissionDenied => CliError::Unauthenticated {
            source_name: call.key_source.to_string(),
            message,
        },
        Code::NotFound => CliError::NotFound(message),
        Code::InvalidArgument | Code::OutOfRange => CliError::InvalidInput(message),
        Code::FailedPrecondition | Code::AlreadyExists | Code::Aborted => {
            CliError::Precondition(message)
        }
        Code::Unimplemented => CliError::Unimplemented {
            command: call.command.to_string(),
            rpc: call.rpc.to_string(),
        },
        Code::Unavailable => CliError::Unreachable {
            server: call.server.to_string(),
            reason: if message.is_empty() {
                "unavailable".into()
            } else {
                message
            },
        },
        Code::ResourceExhausted => CliError::Precondition(format!(
            "the server is busy or a limit was reached: {message}"
        )),
        code => CliError::Server { code, message },
    }
}

/// Collapses a message to one line, so that an error never spans several.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call() -> CallContext<'static> {
        CallContext {
            server: "http://s",
            key_source: "MOAI_API_KEY",
            command: "open",
            rpc: "OpenDiscussion",
        }
    }

    #[test]
    fn every_status_class_has_its_exit_code() {
        let cases = [
            (Code::Unauthenticated, 4),
            (Code::PermissionDenied, 4),
            (Code::NotFound, 5),
            (Code::InvalidArgument, 6),
            (Code::FailedPrecondition, 7),
            (Code::AlreadyExists, 7),
            (Code::Unimplemented, 8),
            (Code::Unavailable, 3),
            (Code::Internal, 1),
            (Code::Unknown, 1),
        ];
        for (code, exit) in cases {
            let err = from_status(&Status::new(code, "boom"), &call());
            assert_eq!(err.exit_code().code(), exit, "{code:?}");
        }
    }

    #[test]
    fn codes_are_distinct_and_documented() {
        let all = [
            ExitCode::Success,
            ExitCode::Internal,
            ExitCode::Usage,
            ExitCode::Unreachable,
            ExitCode::Unauthenticated,
            ExitCode::NotFound,
            ExitCode::InvalidInput,
            ExitCode::Precondition,
            ExitCode::Unimplemented,
            ExitCode::AllFailed,
            ExitCode::Detached,
        ];
        let mut seen = std::collections::HashSet::new();
        for code in all {
            assert!(seen.insert(code.code()));
            assert!(
                EXIT_CODES_HELP.contains(&format!("{:>3}  ", code.code())),
                "{code:?} undocumented"
            );
        }
    }

    #[test]
    fn messages_are_one_line_and_say_what_to_do() {
        let err = from_status(&Status::unauthenticated("bad\nkey"), &call());
        let text = err.to_string();
        assert!(!text.contains('\n'));
        assert!(text.contains("MOAI_API_KEY"));
        let err = from_status(&Status::unimplemented(""), &call());
        assert!(err.to_string().contains("`open`"));
    }
}
