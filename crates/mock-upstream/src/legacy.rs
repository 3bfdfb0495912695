//! `POST /v1/completions`: the legacy text-completion endpoint (`prompt` in, `choices[].text`
//! out), non-streaming and streaming, with the same deterministic reply and token rule.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::error::bad_request;
use crate::state::MockState;
use crate::tokens::{REPLY_PREFIX, completion_tokens, split_reply};
use crate::{preflight, sse};

/// The prompt as text: a string, or the strings of an array joined by spaces.
fn prompt_text(prompt: &Value) -> Option<String> {
    match prompt {
        Value::String(text) => Some(text.clone()),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        _ => None,
    }
}

pub async fn completions(State(state): State<MockState>, body: Bytes) -> Response {
    let (request, knobs) = match preflight::parse(&state, &body) {
        Ok(parsed) => parsed,
        Err(rejection) => return rejection.into_response(),
    };
    let Some(model) = request.get("model").and_then(Value::as_str) else {
        return bad_request("you must provide a model parameter", Some("model"));
    };
    let Some(prompt) = request.get("prompt").and_then(prompt_text) else {
        return bad_request("'prompt' is a required property", Some("prompt"));
    };
    if let Some(response) = preflight::run(&state, &knobs).await {
        return response;
    }
    let reply = knobs
        .reply
        .clone()
        .unwrap_or_else(|| format!("{REPLY_PREFIX}{prompt}"));
    let prompt_tokens = prompt.split_whitespace().count() as u64;
    let usage = json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens(&reply),
        "total_tokens": prompt_tokens + completion_tokens(&reply),
    });
    let id = format!("cmpl-mock-{}", state.next_id());
    let head =
        json!({"id": id, "object": "text_completion", "created": 1_700_000_000, "model": model});
    let choice = |text: &str, finish: Option<&str>| {
        let mut chunk = head.clone();
        chunk["choices"] =
            json!([{"text": text, "index": 0, "logprobs": null, "finish_reason": finish}]);
        chunk
    };
    if request.get("stream").and_then(Value::as_bool) != Some(true) {
        let mut body = choice(&reply, Some("stop"));
        if knobs.usage {
            body["usage"] = usage;
        }
        return Json(body).into_response();
    }
    let mut events: Vec<Option<String>> = split_reply(&reply, knobs.chunks)
        .iter()
        .map(|piece| Some(format!("data: {}", choice(piece, None))))
        .collect();
    events.push(Some(format!("data: {}", choice("", Some("stop")))));
    let include_usage = request
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        == Some(true);
    if include_usage && knobs.usage {
        let mut chunk = head.clone();
        chunk["choices"] = json!([]);
        chunk["usage"] = usage;
        events.push(Some(format!("data: {chunk}")));
    }
    events.push(Some("data: [DONE]".to_string()));
    sse::play(events, &knobs)
}
