//! The `moai-server` binary's own command line. (Building these tests also
//! builds the binary that the end-to-end crash test runs.)

use std::process::Command;

fn server() -> Command {
    Command::new(env!("CARGO_BIN_EXE_moai-server"))
}

#[test]
fn help_names_the_config_option() {
    let out = server()
        .arg("--help")
        .output()
        .expect("run moai-server --help");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("--config"), "{text}");
}

#[test]
fn a_bad_listen_address_is_a_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = server()
        .env("MOAI_LISTEN", "not-an-address")
        .env("MOAI_DATA_DIR", dir.path())
        .output()
        .expect("run moai-server");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("MOAI_LISTEN"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
