//! gRPC-Web on the gRPC port: a plain HTTP/1.1 client calls a streaming
//! RPC; CORS lets only the listed origins in.

use moai_proto::v1::{self, discussion_event::Payload};
use moai_tests::server::{TestOptions, TestServer};
use prost::Message as _;

use super::council;

/// One gRPC-Web frame: flag, big-endian length, bytes.
fn frame(flag: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![flag];
    out.extend_from_slice(&u32::try_from(bytes.len()).expect("small").to_be_bytes());
    out.extend_from_slice(bytes);
    out
}

/// Splits a gRPC-Web body into its message frames and its trailer text.
fn frames(mut body: &[u8]) -> (Vec<Vec<u8>>, String) {
    let (mut messages, mut trailers) = (Vec::new(), String::new());
    while body.len() >= 5 {
        let flag = body[0];
        let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        let bytes = &body[5..5 + len];
        if flag & 0x80 == 0 {
            messages.push(bytes.to_vec());
        } else {
            trailers.push_str(&String::from_utf8_lossy(bytes));
        }
        body = &body[5 + len..];
    }
    (messages, trailers)
}

#[tokio::test]
async fn a_streaming_rpc_works_over_grpc_web_on_http1() {
    let ts = TestServer::spawn().await;
    let project = council(&ts, "web", "gw").await;
    let request = v1::OpenDiscussionRequest {
        project_id: project.id.clone(),
        question: "From a browser?".into(),
    };

    let response = reqwest::Client::builder()
        .http1_only()
        .build()
        .expect("client")
        .post(format!(
            "{}/moai.v1.DiscussionService/OpenDiscussion",
            ts.url
        ))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .bearer_auth(&ts.key)
        .body(frame(0, &request.encode_to_vec()))
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("application/grpc-web"))
    );
    let body = response.bytes().await.expect("body");

    let (messages, trailers) = frames(&body);
    assert!(trailers.contains("grpc-status:0"), "{trailers}");
    let events: Vec<v1::DiscussionEvent> = messages
        .iter()
        .map(|m| {
            v1::OpenDiscussionResponse::decode(m.as_slice())
                .expect("a response message")
                .event
                .expect("an event")
        })
        .collect();
    assert!(matches!(
        events[0].payload,
        Some(Payload::DiscussionStarted(_))
    ));
    let completed = events
        .iter()
        .filter(|e| matches!(e.payload, Some(Payload::MessageCompleted(_))))
        .count();
    assert_eq!(completed, 2, "both members answered");
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
}

#[tokio::test]
async fn grpc_web_without_a_key_is_unauthenticated() {
    let ts = TestServer::spawn().await;
    let response = reqwest::Client::new()
        .post(format!("{}/moai.v1.ProjectService/ListProjects", ts.url))
        .header("content-type", "application/grpc-web+proto")
        .body(frame(
            0,
            &v1::ListProjectsRequest::default().encode_to_vec(),
        ))
        .send()
        .await
        .expect("response");
    let status = response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    assert_eq!(status.as_deref(), Some("16"), "UNAUTHENTICATED");
}

async fn preflight(ts: &TestServer, origin: &str) -> Option<String> {
    let response = reqwest::Client::new()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/moai.v1.DiscussionService/OpenDiscussion", ts.url),
        )
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type,x-grpc-web",
        )
        .send()
        .await
        .expect("preflight");
    response
        .headers()
        .get("access-control-allow-origin")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[tokio::test]
async fn cors_allows_only_listed_origins_and_none_by_default() {
    let default = TestServer::spawn().await;
    assert_eq!(preflight(&default, "https://app.example").await, None);

    let ts = TestServer::spawn_with(TestOptions {
        grpc_web_origins: vec!["https://app.example".into()],
        ..TestOptions::default()
    })
    .await;
    assert_eq!(
        preflight(&ts, "https://app.example").await.as_deref(),
        Some("https://app.example")
    );
    assert_eq!(preflight(&ts, "https://evil.example").await, None);
}
