//! TLS end to end: gRPC over TLS with a private CA, certificates renewed on
//! disk without a restart, client certificates, and PostgreSQL over TLS.

use moai_proto::tls::{ClientTls, TlsFailure, tls_failure};
use moai_proto::v1::{self, project_service_client::ProjectServiceClient};
use moai_tests::fake_llm::FakeLlm;
use moai_tests::server::{
    AuthChannel, KeyAuth, TestOptions, TestServer, fresh_postgres_database, postgres_url,
};
use moai_tests::tls::{TestCa, TlsFiles, served_certificate};
use tonic::service::interceptor::InterceptedService;

use crate::support::{all_messages, discussion_id, get, open, project};

async fn tls_server(files: &TlsFiles, client_ca: Option<std::path::PathBuf>) -> TestServer {
    let mut tls = files.settings();
    tls.client_ca = client_ca;
    TestServer::spawn_with(TestOptions {
        tls: Some(tls),
        ..Default::default()
    })
    .await
}

/// ProjectService as alice over TLS with `tls`; the error of connecting or
/// of the first call, as the client sees it.
async fn list_projects(
    ts: &TestServer,
    tls: &ClientTls,
) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
    let channel = tls.endpoint(&ts.url)?.connect().await?;
    let channel: AuthChannel = InterceptedService::new(channel, KeyAuth::new(&ts.key, None));
    let listed = ProjectServiceClient::new(channel)
        .list_projects(v1::ListProjectsRequest::default())
        .await?;
    Ok(listed.into_inner().projects.len())
}

/// Whether a call failed because the server refused the handshake: its alert
/// is in the error, or (TLS 1.3 completes the client's side first, so under
/// load the alert can come after the call was queued) the call was cancelled
/// by the connection's end.
fn refused_with(err: &(dyn std::error::Error + 'static), failure: TlsFailure) -> bool {
    tls_failure(err) == Some(failure)
        || err
            .downcast_ref::<tonic::Status>()
            .is_some_and(|s| s.code() == tonic::Code::Cancelled)
}

fn trusting(files: &TlsFiles) -> ClientTls {
    ClientTls {
        ca_cert: Some(files.ca.clone()),
        ..ClientTls::default()
    }
}

#[tokio::test]
async fn grpc_over_tls_serves_a_renewed_certificate_without_a_restart() {
    let ca = TestCa::new("moai test CA");
    let first = ca.server(&["127.0.0.1"]);
    let files = TlsFiles::new(&ca, &first);
    let ts = tls_server(&files, None).await;
    assert!(ts.url.starts_with("https://"), "{}", ts.url);
    let client = trusting(&files);
    let channel = client
        .endpoint(&ts.url)
        .expect("endpoint")
        .connect()
        .await
        .expect("TLS connection");
    let mut projects = ProjectServiceClient::new(InterceptedService::new(
        channel,
        KeyAuth::new(&ts.key, None),
    ));
    projects
        .create_project(v1::CreateProjectRequest {
            name: "secure".into(),
            models: vec!["v/a".into()],
            ..Default::default()
        })
        .await
        .expect("a call over TLS");
    assert_eq!(served_certificate(ts.addr, &ca).await, first.der);

    let renewed = ca.server(&["127.0.0.1"]);
    files.replace(&renewed);

    assert_eq!(
        served_certificate(ts.addr, &ca).await,
        renewed.der,
        "the next connection gets the renewed certificate"
    );
    assert_eq!(
        list_projects(&ts, &client).await.expect("new connection"),
        1
    );
    let listed = projects
        .list_projects(v1::ListProjectsRequest::default())
        .await
        .expect("the open connection goes on");
    assert_eq!(listed.into_inner().projects.len(), 1);

    // A botched renewal: the new certificate with the old key.
    let botched = ca.server(&["127.0.0.1"]);
    std::fs::write(&files.cert, &botched.cert_pem).expect("write");
    assert_eq!(
        served_certificate(ts.addr, &ca).await,
        renewed.der,
        "a bad new certificate keeps the previous one"
    );
}

#[tokio::test]
async fn with_a_client_ca_only_clients_with_its_certificates_get_in() {
    let ca = TestCa::new("moai test CA");
    let files = TlsFiles::new(&ca, &ca.server(&["127.0.0.1"]));
    let team = TestCa::new("team CA");
    let team_ca = files.write("team-ca.pem", &team.pem());
    let ts = tls_server(&files, Some(team_ca)).await;

    let without = list_projects(&ts, &trusting(&files))
        .await
        .expect_err("no client certificate");
    assert!(
        refused_with(&*without, TlsFailure::ClientCertRequired),
        "{without:?}"
    );

    let laptop = team.client("alice-laptop");
    let with = ClientTls {
        client_cert: Some(files.write("laptop.pem", &laptop.cert_pem)),
        client_key: Some(files.write("laptop.key", &laptop.key_pem)),
        ..trusting(&files)
    };
    assert_eq!(list_projects(&ts, &with).await.expect("let in"), 0);

    let stranger = ca.client("someone-else");
    let foreign = ClientTls {
        client_cert: Some(files.write("stranger.pem", &stranger.cert_pem)),
        client_key: Some(files.write("stranger.key", &stranger.key_pem)),
        ..trusting(&files)
    };
    let refused = list_projects(&ts, &foreign)
        .await
        .expect_err("a certificate of another CA");
    assert!(
        refused_with(&*refused, TlsFailure::ClientCertRefused),
        "{refused:?}"
    );

    // A certificate is no API key: the key still has to be right.
    let channel = with
        .endpoint(&ts.url)
        .expect("endpoint")
        .connect()
        .await
        .expect("TLS connection");
    let unauthenticated = ProjectServiceClient::new(channel)
        .list_projects(v1::ListProjectsRequest::default())
        .await
        .expect_err("no API key");
    assert_eq!(unauthenticated.code(), tonic::Code::Unauthenticated);
}

/// `url` with `params` added to its query.
fn with_params(url: &str, params: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{params}")
}

#[tokio::test]
async fn the_store_runs_on_postgres_over_tls_with_sslmode_require() {
    if postgres_url().is_none() {
        eprintln!(
            "MOAI_TEST_POSTGRES_URL is not set: PostgreSQL variant not run here (.ci/run sets it)"
        );
        return;
    }
    let url = with_params(&fresh_postgres_database().await, "sslmode=require");
    let ts = TestServer::spawn_with(TestOptions {
        database_url: Some(url.clone()),
        ..Default::default()
    })
    .await;
    let p = project(&ts, "over-tls", &["a/one", "b/two"]).await;
    let events = open(&ts, &p.id, "Encrypted on the wire?").await;
    let stored = get(&ts, &discussion_id(&events)).await;
    assert_eq!(all_messages(&stored).len(), 2);

    // Every connection the server holds to its database is encrypted.
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
    let (plain, encrypted): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE NOT s.ssl), count(*) FILTER (WHERE s.ssl)
         FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
         WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()",
    )
    .fetch_one(&mut conn)
    .await
    .expect("pg_stat_ssl");
    assert_eq!(plain, 0, "no plaintext connection");
    assert!(encrypted > 0, "the server's pool is connected over TLS");
    let _ = conn.close().await;
}

/// How a `moai-server` process started: serving, or exited with this stderr.
enum Started {
    Serving(std::process::Child),
    Exited(String),
}

/// Starts the real binary on `database_url`, trusting only the CAs in
/// `sslrootcert` (the system's roots are replaced by a bundle of one
/// unrelated CA and an empty directory), and
/// waits until it either listens or exits.
async fn start_binary(database_url: &str) -> Started {
    let dir = tempfile::tempdir().expect("dir");
    // One unrelated root, as the model client refuses to start with none.
    let no_roots = dir.path().join("other-roots.pem");
    std::fs::write(&no_roots, TestCa::new("unrelated root").pem()).expect("bundle");
    let no_root_dir = dir.path().join("no-roots");
    std::fs::create_dir(&no_root_dir).expect("empty dir");
    let stderr = std::fs::File::create(dir.path().join("stderr")).expect("stderr file");
    let llm = FakeLlm::start().await;
    let port = moai_tests::process::free_port();
    let mut child = std::process::Command::new(moai_tests::process::server_binary())
        .env("MOAI_DATA_DIR", dir.path())
        .env("MOAI_LISTEN", format!("127.0.0.1:{port}"))
        .env("MOAI_HTTP_LISTEN", "off")
        .env(
            "MOAI_API_KEYS",
            format!("alice:{}", moai_tests::server::ALICE_KEY),
        )
        .env("MOAI_LLM_BASE_URL", llm.base_url())
        .env("DATABASE_URL", database_url)
        .env("SSL_CERT_FILE", &no_roots)
        .env("SSL_CERT_DIR", &no_root_dir)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn moai-server");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(_status) = child.try_wait().expect("try_wait") {
            return Started::Exited(
                std::fs::read_to_string(dir.path().join("stderr")).expect("stderr"),
            );
        }
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Started::Serving(child);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "moai-server neither listened nor exited within 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn postgres_verify_full_trusts_sslrootcert_and_checks_the_name() {
    if postgres_url().is_none() {
        eprintln!(
            "MOAI_TEST_POSTGRES_URL is not set: PostgreSQL variant not run here (.ci/run sets it)"
        );
        return;
    }
    let url = fresh_postgres_database().await;
    // The certificate the local PostgreSQL serves (self-signed, for localhost).
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
    let (cert_file,): (String,) = sqlx::query_as("SELECT current_setting('ssl_cert_file')")
        .fetch_one(&mut conn)
        .await
        .expect("ssl_cert_file");
    let _ = conn.close().await;
    assert!(
        std::fs::metadata(&cert_file).is_ok(),
        "{cert_file} (the database's ssl_cert_file) must be readable for this test"
    );
    let by_name = url.replacen("127.0.0.1", "localhost", 1);
    assert_ne!(by_name, url, "the test database is reached at 127.0.0.1");
    let root = format!("sslrootcert={cert_file}");

    let Started::Exited(untrusted) =
        start_binary(&with_params(&by_name, "sslmode=verify-full")).await
    else {
        panic!("started without a root for the database's certificate");
    };
    assert!(untrusted.contains("UnknownIssuer"), "{untrusted}");

    let Started::Exited(wrong_name) =
        start_binary(&with_params(&url, &format!("sslmode=verify-full&{root}"))).await
    else {
        panic!("verify-full accepted a certificate for another name");
    };
    assert!(wrong_name.contains("not valid for name"), "{wrong_name}");

    match start_binary(&with_params(
        &by_name,
        &format!("sslmode=verify-full&{root}"),
    ))
    .await
    {
        Started::Serving(mut child) => {
            let _ = child.kill();
            let _ = child.wait();
        }
        Started::Exited(stderr) => panic!("verify-full with sslrootcert did not start: {stderr}"),
    }
}

/// Waits (30 s at most) until the file at `path` contains `needle`.
async fn wait_for_line(path: &std::path::Path, needle: &str) -> String {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {needle:?} within 30 s in: {text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[cfg(unix)]
#[tokio::test]
async fn sighup_makes_the_running_binary_reread_its_certificate() {
    let ca = TestCa::new("moai test CA");
    let first = ca.server(&["127.0.0.1"]);
    let files = TlsFiles::new(&ca, &first);
    let data = tempfile::tempdir().expect("data dir");
    let log = data.path().join("log");
    let llm = FakeLlm::start().await;
    let port = moai_tests::process::free_port();
    let mut child = std::process::Command::new(moai_tests::process::server_binary())
        .env("MOAI_DATA_DIR", data.path())
        .env("MOAI_LISTEN", format!("127.0.0.1:{port}"))
        .env("MOAI_HTTP_LISTEN", "off")
        .env(
            "MOAI_API_KEYS",
            format!("alice:{}", moai_tests::server::ALICE_KEY),
        )
        .env("MOAI_LLM_BASE_URL", llm.base_url())
        .env("MOAI_TLS_CERT", &files.cert)
        .env("MOAI_TLS_KEY", &files.key)
        .env("RUST_LOG", "info")
        // The server logs to stdout.
        .stdout(std::fs::File::create(&log).expect("log file"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn moai-server");
    wait_for_line(&log, "moai server listening").await;

    let sent = std::process::Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(sent.success());
    let text = wait_for_line(&log, "reload requested").await;

    assert!(text.contains("TLS certificate loaded"), "{text}");
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "SIGHUP did not end the server"
    );
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    assert_eq!(served_certificate(addr, &ca).await, first.der);
    let _ = child.kill();
    let _ = child.wait();
}
