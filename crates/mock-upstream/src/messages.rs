//! `POST /v1/messages`: Anthropic's Messages dialect, for testing gateways that translate
//! to it. Requests need `x-api-key` when the server has an API key, and `model`,
//! `max_tokens` and `messages` like the real API; errors use Anthropic's body
//! `{"type":"error","error":{"type","message"}}`.
//!
//! The answer follows the chat rules: the reply is [`reply_for`] (the `reply` knob, or
//! the prefix plus the last user text), cut to `max_tokens` words (then `stop_reason` is
//! `max_tokens`). Usage: the whole prompt is [`anthropic_prompt_tokens`]; the
//! `cache_read_tokens` / `cache_write_tokens` knobs move that many tokens out of
//! `input_tokens` into `cache_read_input_tokens` / `cache_creation_input_tokens`, as
//! Anthropic reports them; `cache_write_1h_tokens` adds 1-hour writes, which Anthropic
//! counts in `cache_creation_input_tokens` and breaks down in `usage.cache_creation`. `output_tokens` are the reply's words (at least 1) plus, per
//! tool call, the words of its name and of its compact arguments JSON.
//!
//! Requests are held to the rules Anthropic documents (`rules`): live model ids only
//! (`crate::models`), sampling parameters per model family, the thinking form each model
//! takes, no thinking with a forced `tool_choice`, and, in a tool loop with thinking on,
//! the last assistant turn back with its signed thinking blocks first. With thinking on
//! the answer opens with a signed `thinking` block (`thinking`; streamed with a
//! `signature_delta`), whose words count as output tokens.
//!
//! With the `tool_call` knob the answer is those `tool_use` blocks (preceded by a text
//! block only if `reply` is set) and `stop_reason` is `tool_use`; when streamed, each
//! call's arguments JSON arrives in `pieces` `input_json_delta` events.
//!
//! Without those knobs the answer follows what the request constrains: with
//! `output_config.format` (structured outputs) the text is a JSON instance of its schema,
//! and a `tool_choice` forcing a tool is answered by a call whose input is an instance of
//! that tool's `input_schema` (`schema_instance`).

mod rules;
mod stream;
pub mod thinking;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::knobs::Knobs;
use crate::preflight;
use crate::schema_instance;
use crate::state::MockState;
use crate::tokens::{
    anthropic_prompt_tokens, completion_tokens, reply_for, split_reply, word_count,
};

/// One scripted `tool_use` block.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCallKnob {
    pub name: String,
    #[serde(default = "empty_object")]
    pub arguments: Value,
    /// How many `input_json_delta` pieces carry the arguments when streamed.
    #[serde(default = "one")]
    pub pieces: usize,
}

fn empty_object() -> Value {
    json!({})
}

fn one() -> usize {
    1
}

/// Everything needed to render one answer, streamed or not.
pub(crate) struct Answer {
    id: String,
    model: String,
    /// The signed thinking block that opens the answer when the request turns thinking on.
    thinking: Option<(&'static str, String)>,
    /// A `redacted_thinking` block after it (the `redacted_thinking` knob).
    redacted: bool,
    text: Option<String>,
    /// (id, name, compact arguments JSON, pieces)
    tools: Vec<(String, String, String, usize)>,
    stop_reason: &'static str,
    input_tokens: u64,
    cache_read: u64,
    cache_write: u64,
    cache_write_1h: u64,
    output_tokens: u64,
}

pub async fn messages(State(state): State<MockState>, body: Bytes) -> Response {
    let (request, knobs) = match preflight::parse(&state, &body) {
        Ok(parsed) => parsed,
        Err(rejection) => return bad_request(&rejection.message),
    };
    let Some(model) = request.get("model").and_then(Value::as_str) else {
        return bad_request("model: Field required");
    };
    let Some(max_tokens) = request.get("max_tokens").and_then(Value::as_u64) else {
        return bad_request("max_tokens: Field required");
    };
    if !request.get("messages").is_some_and(Value::is_array) {
        return bad_request("messages: Field required");
    }
    if let Err((status, message)) = rules::check(&request, model, max_tokens) {
        return error(status, &message);
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
        return error(status, &format!("mock failure {}", status.as_u16()));
    }
    let answer = Answer::new(&state, &request, model, max_tokens, &knobs);
    if request.get("stream").and_then(Value::as_bool) == Some(true) {
        stream::response(&answer, &knobs)
    } else {
        Json(answer.to_json()).into_response()
    }
}

impl Answer {
    fn new(
        state: &MockState,
        request: &Value,
        model: &str,
        max_tokens: u64,
        knobs: &Knobs,
    ) -> Self {
        let n = state.next_id();
        let mut text = match structured_output(request) {
            Some(schema) if knobs.reply.is_none() => schema_instance::instance(schema).to_string(),
            _ => reply_for(request),
        };
        let mut stop_reason = "end_turn";
        let mut tools: Vec<_> = knobs
            .tool_calls
            .iter()
            .enumerate()
            .map(|(k, call)| {
                let arguments = call.arguments.to_string();
                (
                    format!("toolu_mock_{n}_{k}"),
                    call.name.clone(),
                    arguments,
                    call.pieces,
                )
            })
            .collect();
        if tools.is_empty()
            && let Some((name, schema)) = forced_tool(request)
        {
            let arguments = schema_instance::instance(schema).to_string();
            tools.push((format!("toolu_mock_{n}_0"), name.to_owned(), arguments, 2));
        }
        if !tools.is_empty() {
            stop_reason = "tool_use";
        } else if word_count(&text) > max_tokens {
            let words = split_reply(&text, usize::MAX);
            let kept = usize::try_from(max_tokens).unwrap_or(usize::MAX);
            text = words[..kept.min(words.len())]
                .concat()
                .trim_end()
                .to_owned();
            stop_reason = "max_tokens";
        }
        let text = (tools.is_empty() || knobs.reply.is_some()).then_some(text);
        let thinking = thinking::is_on(request)
            .then(|| (thinking::THOUGHT, thinking::sign(thinking::THOUGHT)));
        let output_tokens = text.as_deref().map_or(0, completion_tokens)
            + thinking
                .as_ref()
                .map_or(0, |(thought, _)| word_count(thought))
            + tools
                .iter()
                .map(|(_, name, arguments, _)| word_count(name) + word_count(arguments))
                .sum::<u64>();
        let prompt = anthropic_prompt_tokens(request);
        Self {
            id: format!("msg_mock_{n}"),
            model: model.to_owned(),
            redacted: thinking.is_some() && knobs.redacted_thinking,
            thinking,
            text,
            tools,
            stop_reason,
            input_tokens: prompt.saturating_sub(
                knobs.cache_read_tokens + knobs.cache_write_tokens + knobs.cache_write_1h_tokens,
            ),
            cache_read: knobs.cache_read_tokens,
            cache_write: knobs.cache_write_tokens,
            cache_write_1h: knobs.cache_write_1h_tokens,
            output_tokens: output_tokens.max(1),
        }
    }

    fn usage(&self, output_tokens: u64) -> Value {
        json!({
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_write + self.cache_write_1h,
            "cache_read_input_tokens": self.cache_read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": self.cache_write,
                "ephemeral_1h_input_tokens": self.cache_write_1h,
            },
            "output_tokens": output_tokens,
        })
    }

    /// The non-streaming Messages object.
    fn to_json(&self) -> Value {
        let mut content: Vec<Value> = Vec::new();
        if let Some((thought, signature)) = &self.thinking {
            content.push(json!({"type": "thinking", "thinking": thought, "signature": signature}));
        }
        if self.redacted {
            content.push(json!({"type": "redacted_thinking", "data": thinking::REDACTED}));
        }
        if let Some(text) = &self.text {
            content.push(json!({"type": "text", "text": text}));
        }
        for (id, name, arguments, _) in &self.tools {
            let input: Value = serde_json::from_str(arguments).unwrap_or_else(|_| json!({}));
            content.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
        }
        json!({
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": self.stop_reason,
            "stop_sequence": null,
            "usage": self.usage(self.output_tokens),
        })
    }
}

/// Anthropic's error type for a status.
/// The schema of `output_config.format` (structured outputs), when the request sets one.
fn structured_output(request: &Value) -> Option<&Value> {
    let format = request.pointer("/output_config/format")?;
    (format.get("type").and_then(Value::as_str) == Some("json_schema"))
        .then(|| format.get("schema"))
        .flatten()
}

/// The tool `tool_choice` forces (`{type: "tool", name}`) and its `input_schema`: the
/// model must call it, so the answer does.
fn forced_tool(request: &Value) -> Option<(&str, &Value)> {
    let choice = request.get("tool_choice")?;
    if choice.get("type").and_then(Value::as_str) != Some("tool") {
        return None;
    }
    let name = choice.get("name").and_then(Value::as_str)?;
    let tool = request
        .get("tools")?
        .as_array()?
        .iter()
        .find(|t| t.get("name").and_then(Value::as_str) == Some(name))?;
    Some((name, tool.get("input_schema")?))
}

fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

/// `{"type":"error","error":{"type","message"}}` with `status`.
pub fn error(status: StatusCode, message: &str) -> Response {
    let body = json!({"type": "error", "error": {"type": error_type(status), "message": message}});
    (status, Json(body)).into_response()
}

fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, message)
}

/// Enforces `Defaults::api_key` through `x-api-key`, Anthropic's header.
pub async fn auth(State(state): State<MockState>, request: Request, next: Next) -> Response {
    if let Some(key) = &state.defaults().api_key {
        let presented = request
            .headers()
            .get("x-api-key")
            .and_then(|v| v.to_str().ok());
        if presented != Some(key.as_str()) {
            return error(StatusCode::UNAUTHORIZED, "invalid x-api-key");
        }
    }
    next.run(request).await
}
