//! The CLI against a server over TLS: a private CA, failed handshakes as one
//! line with exit code 3, and client certificates.

use std::path::Path;

use moai_tests::fake_llm::Script;
use moai_tests::server::{TestOptions, TestServer};
use moai_tests::tls::{Issued, TestCa, TlsFiles};

use crate::support::{Moai, Run, headers};

async fn tls_server(files: &TlsFiles, client_ca: Option<&Path>) -> TestServer {
    let mut tls = files.settings();
    tls.client_ca = client_ca.map(Path::to_path_buf);
    TestServer::spawn_with(TestOptions {
        tls: Some(tls),
        ..Default::default()
    })
    .await
}

fn with_ca(mut moai: Moai, files: &TlsFiles) -> Moai {
    moai.env
        .push(("MOAI_CA_CERT".into(), files.ca.display().to_string()));
    moai
}

/// Exit 3 and one line that says `needle`.
fn assert_tls_failure(run: &Run, needle: &str) {
    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(
        run.stderr.contains("over TLS") && run.stderr.contains(needle),
        "{run:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_runs_over_https_with_the_private_ca() {
    let ca = TestCa::new("team CA");
    let files = TlsFiles::new(&ca, &ca.server(&["127.0.0.1"]));
    let ts = tls_server(&files, None).await;
    ts.llm
        .script("v/alpha", Script::new().text("Alpha, encrypted."));
    ts.llm
        .script("v/beta", Script::new().text("Beta, encrypted."));
    let moai = with_ca(Moai::for_server(&ts), &files);
    assert!(moai.server.starts_with("https://"), "{}", moai.server);

    moai.ok(&["project", "create", "secure", "-m", "v/alpha,v/beta"])
        .await;
    let run = moai.ok(&["-p", "secure", "open", "Private?"]).await;

    let mut got = headers(&run.stdout);
    got.sort_unstable();
    assert_eq!(got, ["v/alpha", "v/beta"], "{run:?}");
    assert!(run.stdout.contains("Alpha, encrypted."), "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_ca_the_certificate_is_from_an_unknown_ca() {
    let ca = TestCa::new("team CA");
    let files = TlsFiles::new(&ca, &ca.server(&["127.0.0.1"]));
    let ts = tls_server(&files, None).await;

    let run = Moai::for_server(&ts).run(&["project", "list"]).await;

    assert_tls_failure(&run, "unknown CA");
    assert!(run.stderr.contains("MOAI_CA_CERT"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_host_name_is_a_name_mismatch() {
    let ca = TestCa::new("team CA");
    let files = TlsFiles::new(&ca, &ca.server(&["moai.internal"]));
    let ts = tls_server(&files, None).await;

    let run = with_ca(Moai::for_server(&ts), &files)
        .run(&["project", "list"])
        .await;

    assert_tls_failure(&run, "not valid for this host name");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_certificate_says_so() {
    let ca = TestCa::new("team CA");
    let files = TlsFiles::new(&ca, &ca.expired_server());
    let ts = tls_server(&files, None).await;

    let run = with_ca(Moai::for_server(&ts), &files)
        .run(&["project", "list"])
        .await;

    assert_tls_failure(&run, "expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_to_a_plaintext_server_says_it_does_not_speak_tls() {
    let ts = TestServer::spawn().await;
    let moai = Moai::new(&ts.url.replacen("http://", "https://", 1), &ts.key);

    let run = moai.run(&["project", "list"]).await;

    assert_tls_failure(&run, "does not speak TLS");
}

fn with_client_cert(mut moai: Moai, files: &TlsFiles, cert: &Issued) -> Moai {
    let cert_file = files.write("client.pem", &cert.cert_pem);
    let key_file = files.write("client.key", &cert.key_pem);
    moai.env.push((
        "MOAI_TLS_CLIENT_CERT".into(),
        cert_file.display().to_string(),
    ));
    moai.env
        .push(("MOAI_TLS_CLIENT_KEY".into(), key_file.display().to_string()));
    moai
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_a_client_ca_wants_a_client_certificate() {
    let ca = TestCa::new("team CA");
    let files = TlsFiles::new(&ca, &ca.server(&["127.0.0.1"]));
    let ts = tls_server(&files, Some(&files.ca)).await;

    let without = with_ca(Moai::for_server(&ts), &files)
        .run(&["project", "list"])
        .await;
    // Told at the handshake or, when the alert comes after the call was
    // sent (TLS 1.3 under load), as a broken connection with the same hint.
    assert_eq!(without.code, 3, "{without:?}");
    assert_eq!(without.stderr.lines().count(), 1, "{without:?}");
    assert!(
        without.stderr.contains("requires a client certificate")
            && without.stderr.contains("MOAI_TLS_CLIENT_CERT"),
        "{without:?}"
    );

    let moai = with_client_cert(
        with_ca(Moai::for_server(&ts), &files),
        &files,
        &ca.client("alice-laptop"),
    );
    moai.ok(&["project", "create", "mtls", "-m", "v/a"]).await;
    let listed = moai.ok(&["project", "list"]).await;
    assert!(listed.stdout.contains("mtls"), "{listed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_to_a_tls_server_hints_at_https() {
    let ca = TestCa::new("team CA");
    let files = TlsFiles::new(&ca, &ca.server(&["127.0.0.1"]));
    let ts = tls_server(&files, None).await;
    let moai = Moai::new(&ts.url.replacen("https://", "http://", 1), &ts.key);

    let run = moai.run(&["project", "list"]).await;

    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(
        run.stderr.contains("cannot reach") && run.stderr.contains("use https://"),
        "{run:?}"
    );
}
