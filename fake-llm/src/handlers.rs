//! The HTTP handlers: what the fake answers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::openrouter::OpenRouterError;
use super::script::{Script, tokens};
use super::{DropGuard, RecordedMessage, RecordedRequest, Shared, limit, lock, sse};

/// OpenAI's error body (`code` is a string or null there).
fn error_response(status: StatusCode, message: &str, retry_after: Option<u64>) -> Response {
    let (kind, code) = match status.as_u16() {
        429 => ("requests", Some("rate_limit_exceeded")),
        500..=599 => ("server_error", None),
        _ => ("invalid_request_error", None),
    };
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, secs.into());
    }
    response
}

/// Text of a message `content`: a string, or the text parts of an array.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

fn record(headers: &HeaderMap, body: &Value) -> Option<RecordedRequest> {
    let model = body.get("model")?.as_str()?.to_owned();
    let messages = body
        .get("messages")?
        .as_array()?
        .iter()
        .map(|m| RecordedMessage {
            role: m
                .get("role")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            content: m.get("content").map(content_text).unwrap_or_default(),
        })
        .collect();
    Some(RecordedRequest {
        model,
        messages,
        stream: body.get("stream").and_then(Value::as_bool).unwrap_or(false),
        include_usage: body
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        max_tokens: body
            .get("max_tokens")
            .or_else(|| body.get("max_completion_tokens"))
            .and_then(Value::as_u64),
        api_key: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned),
        received_at: Instant::now(),
    })
}

/// `"Answer from <model>: <first 40 chars of the last user message>"`.
fn default_text(request: &RecordedRequest) -> String {
    let last_user = request
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .map(|m| m.content.chars().take(40).collect::<String>())
        .unwrap_or_default();
    format!("Answer from {}: {last_user}", request.model)
}

pub(super) async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(request) = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|body| record(&headers, &body))
    else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "expected a chat completion request",
            None,
        );
    };
    shared.request_count.fetch_add(1, Ordering::Relaxed);
    if !shared.not_recording.load(Ordering::Relaxed) {
        lock(&shared.requests).push(request.clone());
    }

    let slot = match limit::admit(&shared) {
        Ok(slot) => slot,
        Err(retry_after) => {
            return OpenRouterError::RateLimited.response(&request.model, Some(retry_after));
        }
    };
    let script = super::rules::script_for(&shared, &request)
        .unwrap_or_else(|| script_for(&shared, &request.model));
    if let (Some(_), Some(error)) = (script.fail_status, script.openrouter_error) {
        return error.response(&request.model, script.retry_after_secs);
    }
    if let Some(status) = script.fail_status {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return error_response(status, "scripted failure", script.retry_after_secs);
    }
    if script.hang {
        let mut guard = DropGuard::new(&request.model, &shared).holding(slot);
        shared.stop.stopped().await;
        guard.defuse();
        return sse::cut_off();
    }

    let answer = answer(&shared, &request, &script);
    if !request.stream {
        tokio::time::sleep(script.first_token_delay).await;
        if script.malformed_after_chunks.is_some() {
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                "{\"id\": ",
            )
                .into_response();
        }
        return axum::Json(answer.completion()).into_response();
    }

    let last_user = request
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .map(|m| m.content.clone());
    let guard = DropGuard::new(&request.model, &shared)
        .for_prompt(last_user)
        .holding(slot);
    let body = Body::from_stream(sse::body_stream(
        answer.frames(),
        guard,
        shared.stop.stopped(),
    ));
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The script for this request; counts it against the script's failures.
fn script_for(shared: &Shared, model: &str) -> Script {
    let mut scripts = lock(&shared.scripts);
    let Some(state) = scripts.get_mut(model) else {
        return lock(&shared.default_script).clone();
    };
    let mut script = state.script.clone();
    if script.fail_status.is_some() && state.failures_served < script.fail_times {
        state.failures_served += 1;
    } else {
        script.fail_status = None;
        script.openrouter_error = None;
    }
    script
}

/// Everything the answer to `request` will say.
fn answer(shared: &Shared, request: &RecordedRequest, script: &Script) -> sse::Answer {
    let text = script.text.clone().unwrap_or_else(|| {
        if shared.demo_voices.load(Ordering::Relaxed) {
            super::demo::answer(request)
        } else {
            default_text(request)
        }
    });
    let completion_tokens = tokens(&text).len() as u64;
    let usage = script.usage.unwrap_or_else(|| {
        let chars: usize = request.messages.iter().map(|m| m.content.len()).sum();
        let prompt = (chars / 4 + request.messages.len()) as u64;
        let cost = 0.0001 * (prompt + completion_tokens) as f64;
        (prompt, completion_tokens, cost)
    });
    sse::Answer {
        id: format!(
            "chatcmpl-fake-{}",
            shared.next_id.fetch_add(1, Ordering::Relaxed)
        ),
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        model: request.model.clone(),
        text,
        first_token_delay: script.first_token_delay,
        token_pace: script.token_pace,
        cut_after_chunks: script.cut_after_chunks,
        malformed_after_chunks: script.malformed_after_chunks,
        error_after_chunks: script.error_after_chunks,
        reasoning: script.reasoning.clone(),
        reasoning_field: script.reasoning_field,
        usage: (request.include_usage || !request.stream).then_some(usage),
    }
}

pub(super) async fn list_models(State(shared): State<Arc<Shared>>) -> Response {
    let mut models: BTreeMap<String, Option<u64>> = lock(&shared.registered).clone();
    for model in lock(&shared.scripts).keys() {
        models.entry(model.clone()).or_insert(None);
    }
    let data: Vec<Value> = models
        .into_iter()
        .map(|(id, context)| {
            let mut entry = json!({"id": id, "object": "model", "created": 0, "owned_by": "fake"});
            if let (Some(context), Some(map)) = (context, entry.as_object_mut()) {
                map.insert("name".into(), json!(format!("Fake {id}")));
                map.insert("context_length".into(), json!(context));
            }
            entry
        })
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}
