//! The bot reaching a server over TLS with a private CA.

use moai_proto::tls::ClientTls;
use moai_tests::fake_llm::Script;
use moai_tests::fake_telegram::FakeTelegram;
use moai_tests::server::{TestOptions, TestServer};
use moai_tests::tls::{TestCa, TlsFiles};

use crate::support::*;

async fn tls_world() -> (FakeTelegram, TestServer, TlsFiles, tempfile::TempDir) {
    let ca = TestCa::new("team CA");
    let files = TlsFiles::new(&ca, &ca.server(&["127.0.0.1"]));
    let ts = TestServer::spawn_with(TestOptions {
        tls: Some(files.settings()),
        ..Default::default()
    })
    .await;
    let tg = FakeTelegram::start().await;
    (tg, ts, files, tempfile::tempdir().expect("temp dir"))
}

#[tokio::test]
async fn the_bot_runs_a_round_over_tls() {
    let (tg, ts, files, state) = tls_world().await;
    ts.llm
        .script("fake/a", Script::new().text("Answered over TLS."));
    let mut config = config(&tg, &ts.url, &ts.gateway_key, state.path().join("s.json"));
    config.tls = ClientTls {
        ca_cert: Some(files.ca.clone()),
        ..ClientTls::default()
    };
    let _bot = start(config);

    tg.send_text(USER, "/new Secure fake/a");
    tg.send_text(USER, "/open Is this private?");

    let answered = tg
        .wait_until(LIMIT, |tg| {
            tg.bot_messages(USER)
                .iter()
                .any(|m| m.text.contains("Answered over TLS."))
        })
        .await;
    assert!(answered, "{:#?}", texts(&tg.bot_messages(USER)));
}

#[tokio::test]
async fn without_the_ca_the_user_hears_of_a_tls_problem() {
    let (tg, ts, _files, state) = tls_world().await;
    let _bot = start(config(
        &tg,
        &ts.url,
        &ts.gateway_key,
        state.path().join("s.json"),
    ));

    tg.send_text(USER, "/projects");

    assert!(
        tg.wait_until(LIMIT, |tg| !tg.bot_messages(USER).is_empty())
            .await
    );
    let reply = &tg.bot_messages(USER)[0];
    assert!(reply.text.contains("TLS problem"), "{}", reply.text);
}
