//! `POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent?alt=sse`:
//! Gemini's native dialect, for testing gateways that translate to it.
//!
//! - Authentication: when the server has an API key, `x-goog-api-key` must carry it
//!   (else 400 `API_KEY_INVALID`, as Gemini answers). A `key` in the query is refused
//!   outright, so a test passing through here proves the key never went in the URL.
//! - Like the real API, the body is read strictly: `contents` is required, and a
//!   top-level member Gemini does not know is a 400 (`mock`, the knobs, excepted), which
//!   catches OpenAI members a translation forgot to drop.
//! - The answer follows the chat rules on an OpenAI view of the request (`contents` →
//!   `messages` with `model` → `assistant`, `systemInstruction` → `system`): the reply is
//!   [`reply_for`], the prompt is [`anthropic_prompt_tokens`] (words + 3 per turn, the
//!   system instruction included). `generationConfig.maxOutputTokens` cuts the reply to
//!   that many words (`finishReason: MAX_TOKENS`).
//! - Knobs: `cached_tokens` → `cachedContentTokenCount`; `reasoning` → a `thought: true`
//!   part first, counted in `thoughtsTokenCount`; `tool_call` → `functionCall` parts
//!   (after the text only if `reply` is set), counted like the Anthropic dialect counts
//!   them; `finish_reason` other than `stop` is sent verbatim as `finishReason` (e.g.
//!   `SAFETY`); `fail_status` answers Gemini's error body; `error_event` ends a stream
//!   with an in-band `{"error": …}` event after the text; `thought_signature` signs the
//!   first call and requires the signature back in later turns (see `signature`).

mod rules;
mod signature;
mod stream;

use axum::Json;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::knobs::Knobs;
use crate::preflight;
use crate::state::MockState;
use crate::tokens::{
    anthropic_prompt_tokens, completion_tokens, reply_for, split_reply, word_count,
};

/// Top-level members of a `GenerateContentRequest`, in both spellings Gemini accepts.
const KNOWN: &[&str] = &[
    "contents",
    "systemInstruction",
    "system_instruction",
    "tools",
    "toolConfig",
    "tool_config",
    "generationConfig",
    "generation_config",
    "safetySettings",
    "safety_settings",
    "cachedContent",
    "cached_content",
    "mock",
];

/// Everything needed to render one answer, streamed or not.
pub(crate) struct Answer {
    id: String,
    model: String,
    reasoning: Option<String>,
    text: Option<String>,
    /// (name, args)
    calls: Vec<(String, Value)>,
    /// `thoughtSignature` of the first call.
    signature: Option<String>,
    finish_reason: String,
    usage: Value,
}

pub async fn generate(
    State(state): State<MockState>,
    Path(target): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let Some((model, method)) = target.split_once(':') else {
        return error(
            StatusCode::NOT_FOUND,
            "mock: expected {model}:generateContent",
        );
    };
    let stream = match method {
        "generateContent" => false,
        "streamGenerateContent" => true,
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                &format!("mock: unknown method {method}"),
            );
        }
    };
    if stream
        && !query
            .as_deref()
            .unwrap_or("")
            .split('&')
            .any(|p| p == "alt=sse")
    {
        // Without alt=sse the real API streams one JSON array, which this mock does not.
        return error(
            StatusCode::BAD_REQUEST,
            "mock: streamGenerateContent needs alt=sse",
        );
    }
    let (request, knobs) = match preflight::parse(&state, &body) {
        Ok(parsed) => parsed,
        Err(rejection) => return error(StatusCode::BAD_REQUEST, &rejection.message),
    };
    if let Some(unknown) = request
        .as_object()
        .and_then(|o| o.keys().find(|k| !KNOWN.contains(&k.as_str())))
    {
        return error(
            StatusCode::BAD_REQUEST,
            &format!(
                "Invalid JSON payload received. Unknown name \"{unknown}\": Cannot find field."
            ),
        );
    }
    if request
        .get("contents")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        return error(
            StatusCode::BAD_REQUEST,
            "* GenerateContentRequest.contents: contents is not specified",
        );
    }
    if !crate::models::is_live(model) {
        return error(
            StatusCode::NOT_FOUND,
            &format!(
                "models/{model} is not found for API version v1beta, or is not supported for generateContent."
            ),
        );
    }
    if let Some(message) = rules::refusal(&request, model) {
        return error(StatusCode::BAD_REQUEST, &message);
    }
    if let Some(signature) = &knobs.thought_signature
        && let Some(turn) = signature::unsigned_turn(&request, signature)
    {
        return error(StatusCode::BAD_REQUEST, &signature::missing_message(turn));
    }
    // Timing and hanging as for chat; the scripted failure speaks this dialect.
    let timing = Knobs {
        fail_status: None,
        ..knobs.clone()
    };
    if let Some(response) = preflight::run(&state, &timing).await {
        return response;
    }
    if let Some(status) = knobs.fail_status
        && state.should_fail(&knobs.fail_key, knobs.fail_times)
    {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        // `fail_body` scripts a specific error, e.g. a `FAILED_PRECONDITION`.
        if let Some(body) = &knobs.fail_body {
            return (status, Json(body.clone())).into_response();
        }
        return error(status, &format!("mock failure {}", status.as_u16()));
    }
    let answer = Answer::new(&state, &request, model, &knobs);
    if stream {
        stream::response(&answer, &knobs)
    } else {
        Json(answer.to_json()).into_response()
    }
}

/// The request as OpenAI chat messages, so the shared reply and token rules apply.
fn as_chat(request: &Value) -> Value {
    let texts = |content: &Value| -> Vec<Value> {
        content["parts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|part| part["text"].as_str())
            .map(|text| json!({"type": "text", "text": text}))
            .collect()
    };
    let messages: Vec<Value> = request["contents"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|turn| {
            let role = if turn["role"] == "model" {
                "assistant"
            } else {
                "user"
            };
            json!({"role": role, "content": texts(turn)})
        })
        .collect();
    let mut chat = json!({"messages": messages, "mock": request["mock"]});
    let system = request
        .get("systemInstruction")
        .or_else(|| request.get("system_instruction"));
    if let Some(system) = system {
        chat["system"] = Value::Array(texts(system));
    }
    chat
}

impl Answer {
    fn new(state: &MockState, request: &Value, model: &str, knobs: &Knobs) -> Self {
        let chat = as_chat(request);
        let mut text = reply_for(&chat);
        let mut finish_reason = if knobs.finish_reason == "stop" {
            "STOP".to_owned()
        } else {
            knobs.finish_reason.clone()
        };
        let calls: Vec<(String, Value)> = knobs
            .tool_calls
            .iter()
            .map(|call| (call.name.clone(), call.arguments.clone()))
            .collect();
        let limit = request
            .pointer("/generationConfig/maxOutputTokens")
            .and_then(Value::as_u64);
        if let Some(limit) = limit
            && calls.is_empty()
            && word_count(&text) > limit
        {
            let words = split_reply(&text, usize::MAX);
            let kept = usize::try_from(limit).unwrap_or(usize::MAX);
            text = words[..kept.min(words.len())]
                .concat()
                .trim_end()
                .to_owned();
            finish_reason = "MAX_TOKENS".to_owned();
        }
        let text = (calls.is_empty() || knobs.reply.is_some()).then_some(text);
        let candidates = text.as_deref().map_or(0, completion_tokens)
            + calls
                .iter()
                .map(|(name, args)| word_count(name) + word_count(&args.to_string()))
                .sum::<u64>();
        let candidates = candidates.max(1);
        let thoughts = knobs.reasoning.as_deref().map_or(0, word_count);
        let prompt = anthropic_prompt_tokens(&chat);
        let mut usage = json!({
            "promptTokenCount": prompt,
            "candidatesTokenCount": candidates,
            "totalTokenCount": prompt + candidates + thoughts,
        });
        if knobs.cached_tokens > 0 {
            usage["cachedContentTokenCount"] = json!(knobs.cached_tokens);
        }
        if thoughts > 0 {
            usage["thoughtsTokenCount"] = json!(thoughts);
        }
        Self {
            id: format!("gemini-mock-{}", state.next_id()),
            model: model.to_owned(),
            reasoning: knobs.reasoning.clone(),
            text,
            calls,
            signature: knobs.thought_signature.clone(),
            finish_reason,
            usage,
        }
    }

    fn call_parts(&self) -> Vec<Value> {
        let mut parts: Vec<Value> = self
            .calls
            .iter()
            .map(|(name, args)| json!({"functionCall": {"name": name, "args": args}}))
            .collect();
        if let (Some(first), Some(signature)) = (parts.first_mut(), &self.signature) {
            first["thoughtSignature"] = json!(signature);
        }
        parts
    }

    /// One `GenerateContentResponse` with these parts.
    fn response(&self, parts: Vec<Value>, finish: bool, usage: Value) -> Value {
        let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
        if finish {
            candidate["finishReason"] = json!(self.finish_reason);
        }
        json!({
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": self.model,
            "responseId": self.id,
        })
    }

    /// The non-streaming answer.
    fn to_json(&self) -> Value {
        let mut parts = Vec::new();
        if let Some(reasoning) = &self.reasoning {
            parts.push(json!({"text": reasoning, "thought": true}));
        }
        if let Some(text) = &self.text {
            parts.push(json!({"text": text}));
        }
        parts.extend(self.call_parts());
        self.response(parts, true, self.usage.clone())
    }
}

/// Gemini's status name for an HTTP status.
fn status_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    }
}

/// `{"error":{"code","message","status"}}` with `status`.
pub fn error(status: StatusCode, message: &str) -> Response {
    let body = json!({"error": {"code": status.as_u16(), "message": message,
        "status": status_name(status)}});
    (status, Json(body)).into_response()
}

/// Refuses keys in the URL, and enforces `Defaults::api_key` through `x-goog-api-key`.
pub async fn auth(State(state): State<MockState>, request: Request, next: Next) -> Response {
    let in_query = request
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p.starts_with("key=")));
    if in_query {
        return error(
            StatusCode::BAD_REQUEST,
            "mock: the API key must travel in x-goog-api-key, not in the URL",
        );
    }
    if let Some(key) = &state.defaults().api_key {
        let presented = request
            .headers()
            .get("x-goog-api-key")
            .and_then(|v| v.to_str().ok());
        if presented != Some(key.as_str()) {
            // The real API answers a bad key with 400, naming the reason in `details`.
            let body = json!({"error": {"code": 400,
                "message": "API key not valid. Please pass a valid API key.",
                "status": "INVALID_ARGUMENT",
                "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                             "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}});
            return (StatusCode::BAD_REQUEST, Json(body)).into_response();
        }
    }
    next.run(request).await
}
