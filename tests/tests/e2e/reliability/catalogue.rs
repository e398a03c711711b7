//! Model ids checked against the providers' cached `/models`.

use moai_proto::v1;
use moai_server::llm::ProviderSettings;
use moai_tests::server::{TestOptions, TestServer};
use tonic::Code;

/// An address where nothing listens.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}/v1")
}

/// The fake checks its ids; `dead/` models go to a provider nobody answers
/// for; `free/` models to one that opted out of the check.
async fn checking_server() -> TestServer {
    let dead = closed_port_url();
    let ts = TestServer::spawn_with(TestOptions {
        llm: Box::new(move |llm| {
            llm.providers[0].check_models = true;
            llm.providers[0].models = vec!["anthropic/".into(), "openai/".into()];
            let other = |name: &str, prefix: &str, check| ProviderSettings {
                name: name.into(),
                base_url: dead.clone(),
                models: vec![prefix.into()],
                check_models: check,
                ..ProviderSettings::default()
            };
            llm.providers.push(other("dead", "dead/", true));
            llm.providers.push(other("free", "free/", false));
            llm.retry.max_retries = 0;
        }),
        ..TestOptions::default()
    })
    .await;
    ts.llm.register_model("anthropic/claude-sonnet-4.5");
    ts.llm.register_model("anthropic/claude-opus-4.1");
    ts.llm.register_model("openai/gpt-4o");
    ts
}

fn create(name: &str, models: &[&str]) -> v1::CreateProjectRequest {
    v1::CreateProjectRequest {
        name: name.into(),
        models: models.iter().map(|m| (*m).to_owned()).collect(),
        ..Default::default()
    }
}

#[tokio::test]
async fn an_unknown_id_is_refused_with_the_closest_ids_offered() {
    let ts = checking_server().await;
    let mut projects = ts.projects().await;

    let refused = projects
        .create_project(create(
            "typo",
            &["openai/gpt-4o", "anthropic/claude-sonet-4.5"],
        ))
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().starts_with(
            "no provider offers model anthropic/claude-sonet-4.5 (did you mean anthropic/claude-sonnet-4.5"
        ),
        "{}",
        refused.message()
    );

    let ok = projects
        .create_project(create(
            "fine",
            &["openai/gpt-4o", "anthropic/claude-sonnet-4.5"],
        ))
        .await
        .expect("known ids")
        .into_inner();
    assert!(ok.warnings.is_empty(), "{:?}", ok.warnings);

    // UpdateProject checks what it adds, fallbacks included.
    let project_id = ok.project.expect("project").id;
    let refused = projects
        .update_project(v1::UpdateProjectRequest {
            project_id: project_id.clone(),
            add_models: vec!["openai/gpt-40".into()],
            ..Default::default()
        })
        .await
        .expect_err("refused");
    assert!(
        refused.message().contains("did you mean openai/gpt-4o"),
        "{}",
        refused.message()
    );
    let refused = projects
        .update_project(v1::UpdateProjectRequest {
            project_id,
            fallbacks: Some(v1::FallbackMap {
                fallbacks: super::fallback_map(&[("openai/gpt-4o", &["anthropic/claude-opus-4"])]),
            }),
            ..Default::default()
        })
        .await
        .expect_err("refused");
    assert!(
        refused
            .message()
            .contains("did you mean anthropic/claude-opus-4.1"),
        "{}",
        refused.message()
    );
}

#[tokio::test]
async fn an_id_whose_catalogue_cannot_be_fetched_is_accepted_with_a_note() {
    let ts = checking_server().await;

    let created = ts
        .projects()
        .await
        .create_project(create(
            "unchecked",
            &["openai/gpt-4o", "dead/model", "free/anything"],
        ))
        .await
        .expect("accepted")
        .into_inner();

    assert_eq!(
        created.warnings,
        [
            "model dead/model could not be checked: the model list of provider dead could not be fetched; it is accepted as it is"
        ]
    );
    assert_eq!(
        created.project.expect("project").models,
        ["openai/gpt-4o", "dead/model", "free/anything"]
    );
}
