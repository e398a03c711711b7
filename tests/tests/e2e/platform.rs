//! What generic gRPC tools rely on: health and reflection (v1 and v1alpha).

use futures::StreamExt as _;
use moai_tests::server::TestServer;

use crate::support::{next_event, open_stream};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

#[tokio::test]
async fn health_reports_serving() {
    let ts = TestServer::spawn().await;
    let mut health = HealthClient::new(ts.channel().await);
    for service in [
        "",
        "moai.v1.ProjectService",
        "moai.v1.DiscussionService",
        "moai.v1.ModelService",
    ] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health check")
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "service {service:?}");
    }
}

#[tokio::test]
async fn reflection_v1_lists_the_three_services() {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let ts = TestServer::spawn().await;
    let mut client = ServerReflectionClient::new(ts.channel().await);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(futures::stream::iter([req]))
        .await
        .expect("reflection v1")
        .into_inner();
    let response = responses.next().await.expect("one response").expect("ok");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response: {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in moai_proto::SERVICE_NAMES {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
}

#[tokio::test]
async fn reflection_v1alpha_lists_the_three_services_for_older_tools() {
    use tonic_reflection::pb::v1alpha::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let ts = TestServer::spawn().await;
    let mut client = ServerReflectionClient::new(ts.channel().await);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(futures::stream::iter([req]))
        .await
        .expect("reflection v1alpha")
        .into_inner();
    let response = responses.next().await.expect("one response").expect("ok");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response: {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in moai_proto::SERVICE_NAMES {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
}

#[tokio::test]
async fn graceful_shutdown_lets_a_running_round_finish_and_persist() {
    use moai_proto::v1;
    use moai_tests::fake_llm::Script;
    use moai_tests::server::TestOptions;
    use std::time::Duration;

    let ts = TestServer::spawn().await;
    ts.llm.script(
        "slow/one",
        Script::new()
            .text("finished in time")
            .first_token_delay(Duration::from_millis(600)),
    );
    let p = crate::support::project(&ts, "shutdown", &["slow/one"]).await;
    let mut stream = open_stream(&ts, &p.id, "Q").await;
    let first = next_event(&mut stream).await;

    let stopping = tokio::spawn(ts.stop());
    let rest = moai_tests::events::collect(stream, crate::support::LIMIT).await;
    assert_eq!(
        crate::support::completed(&rest),
        [("slow/one".to_owned(), "finished in time".to_owned())]
    );
    let reuse = stopping.await.expect("stopped cleanly");

    let ts = TestServer::spawn_with(TestOptions {
        reuse: Some(reuse),
        ..Default::default()
    })
    .await;
    let d = crate::support::get(&ts, &first.discussion_id).await;
    assert_eq!(d.status, v1::DiscussionStatus::Idle as i32);
    assert_eq!(
        crate::support::all_messages(&d)[0].content,
        "finished in time"
    );
}
