//! The HTTP front doors: the OpenAI-compatible API, metrics, MCP over
//! HTTP, and gRPC-Web on the gRPC port.

mod grpc_web;
mod mcp_http;
mod metrics;
mod openai;

use moai_proto::v1;
use moai_tests::fake_llm::Script;
use moai_tests::server::TestServer;

/// A project of two members and a separate summarizer, each answering a
/// known text with known usage.
pub async fn council(ts: &TestServer, name: &str, prefix: &str) -> v1::Project {
    let (one, two, judge) = members(prefix);
    ts.llm
        .script(&one, Script::new().text("Alpha answer.").usage(10, 5, 0.01));
    ts.llm
        .script(&two, Script::new().text("Beta answer.").usage(20, 6, 0.02));
    ts.llm.script(
        &judge,
        Script::new().text("The consensus.").usage(30, 7, 0.03),
    );
    ts.projects()
        .await
        .create_project(v1::CreateProjectRequest {
            name: name.into(),
            models: vec![one, two],
            summarizer_model: judge,
            ..Default::default()
        })
        .await
        .expect("create project")
        .into_inner()
        .project
        .expect("project")
}

/// The member and summarizer model ids of [`council`].
pub fn members(prefix: &str) -> (String, String, String) {
    (
        format!("{prefix}/one"),
        format!("{prefix}/two"),
        format!("{prefix}/judge"),
    )
}
