//! `/metrics`: the named metrics, with bounded labels. Every server of this
//! test process shares one recorder, so each test reads metrics of model
//! names only it uses.

use moai_proto::v1;
use moai_tests::fake_llm::Script;
use moai_tests::server::TestServer;
use serde_json::json;

use super::{council, members};

async fn scrape(ts: &TestServer) -> String {
    let response = reqwest::get(format!("{}/metrics", ts.http_url))
        .await
        .expect("scrape");
    assert_eq!(response.status(), 200);
    response.text().await.expect("text")
}

/// The value of the sample `name{...}` carrying every label of `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn model_calls_runs_and_grpc_calls_are_measured_without_user_text() {
    let ts = TestServer::spawn().await;
    council(&ts, "measured", "mx").await;
    let (one, _, judge) = members("mx");
    let question = "A question that must not become a label";

    let response = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", ts.http_url))
        .bearer_auth(&ts.key)
        .json(
            &json!({"model": "moai/measured", "messages": [{"role": "user", "content": question}]}),
        )
        .send()
        .await
        .expect("completion");
    assert_eq!(response.status(), 200);
    let id = response
        .headers()
        .get("x-moai-discussion-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .expect("id");
    let _ = response.text().await;
    // A gRPC call that fails, for the code label.
    let missing = ts
        .projects()
        .await
        .get_project(v1::GetProjectRequest {
            project_id: "no-such-project".into(),
        })
        .await;
    assert!(missing.is_err());

    let text = scrape(&ts).await;
    let first_token = sample(
        &text,
        "moai_model_time_to_first_token_seconds_count",
        &[("model", &one), ("provider", "fake")],
    );
    assert_eq!(first_token, Some(1.0), "{text}");
    assert_eq!(
        sample(
            &text,
            "moai_model_call_duration_seconds_count",
            &[("model", &judge)]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "moai_model_tokens_total",
            &[("model", &one), ("kind", "prompt")]
        ),
        Some(10.0)
    );
    assert_eq!(
        sample(
            &text,
            "moai_model_tokens_total",
            &[("model", &one), ("kind", "completion")]
        ),
        Some(5.0)
    );
    let cost = sample(&text, "moai_model_cost_usd_total", &[("model", &judge)]).expect("cost");
    assert!((cost - 0.03).abs() < 1e-9, "{cost}");
    assert!(
        sample(
            &text,
            "moai_provider_queue_seconds_count",
            &[("provider", "fake")]
        )
        .is_some()
    );
    assert!(sample(&text, "moai_runs_active", &[]).is_some(), "{text}");
    assert!(
        sample(&text, "moai_subscribers_active", &[]).is_some(),
        "{text}"
    );
    let created = sample(
        &text,
        "moai_grpc_requests_total",
        &[
            ("method", "moai.v1.ProjectService/CreateProject"),
            ("code", "OK"),
        ],
    );
    assert!(created.is_some_and(|n| n >= 1.0), "{text}");
    let not_found = sample(
        &text,
        "moai_grpc_requests_total",
        &[
            ("method", "moai.v1.ProjectService/GetProject"),
            ("code", "NOT_FOUND"),
        ],
    );
    assert!(not_found.is_some_and(|n| n >= 1.0), "{text}");
    assert!(!text.contains(&id), "no discussion id in a label");
    assert!(!text.contains(question), "no user text in a label");
}

#[tokio::test]
async fn failures_are_counted_by_reason() {
    let ts = TestServer::spawn().await;
    ts.llm.script("fx/broken", Script::new().fail(400));
    ts.llm.script("fx/fine", Script::new().text("Fine."));
    let project = ts
        .projects()
        .await
        .create_project(v1::CreateProjectRequest {
            name: "failing".into(),
            models: vec!["fx/broken".into(), "fx/fine".into()],
            ..Default::default()
        })
        .await
        .expect("project")
        .into_inner()
        .project
        .expect("project");
    crate::support::open(&ts, &project.id, "Does it fail?").await;

    let text = scrape(&ts).await;
    assert_eq!(
        sample(
            &text,
            "moai_model_failures_total",
            &[("model", "fx/broken"), ("reason", "upstream_error")]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "moai_model_failures_total", &[("model", "fx/fine")]),
        None
    );
}
