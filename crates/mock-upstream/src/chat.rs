//! `POST /v1/chat/completions`.
//!
//! With the `tool_call` knob the answer is those `tool_calls` (with `content` only if
//! `reply` is set) and `finish_reason` is `tool_calls`; `completion_tokens` then also
//! count, per call, the words of its name and of its compact arguments JSON (the
//! Anthropic dialect's rule). Streamed, a call opens with its id, name and empty
//! arguments, and the arguments JSON follows in `pieces` deltas.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::error::bad_request;
use crate::knobs::Knobs;
use crate::state::MockState;
use crate::tokens::{completion_tokens, prompt_tokens, reply_for, word_count};
use crate::{preflight, rules, sse};

/// Everything needed to render one response, streamed or not.
pub(crate) struct Completion {
    pub id: String,
    pub created: u64,
    pub model: String,
    /// The text answer; empty when the answer is only tool calls.
    pub reply: String,
    pub tool_calls: Vec<ScriptedCall>,
    pub finish_reason: String,
    pub usage: Value,
    /// `stream_options.include_usage` was true.
    pub include_usage: bool,
    /// The `service_tier` knob, echoed as OpenAI reports the tier that served a request.
    pub service_tier: Option<String>,
}

/// A tool call the `tool_call` knob scripted.
pub(crate) struct ScriptedCall {
    pub id: String,
    pub name: String,
    /// Compact arguments JSON.
    pub arguments: String,
    /// Streamed: how many deltas carry `arguments`.
    pub pieces: usize,
}

pub async fn completions(State(state): State<MockState>, body: Bytes) -> Response {
    let (request, knobs) = match preflight::parse(&state, &body) {
        Ok(parsed) => parsed,
        Err(rejection) => return rejection.into_response(),
    };
    let Some(model) = request.get("model").and_then(Value::as_str) else {
        return bad_request("you must provide a model parameter", Some("model"));
    };
    if !request.get("messages").is_some_and(Value::is_array) {
        return bad_request("'messages' is a required property", Some("messages"));
    }
    if let Some(refusal) = rules::refuse(&request, model) {
        return refusal;
    }
    if let Some(response) = preflight::run(&state, &knobs).await {
        return response;
    }
    let completion = Completion::new(&state, &request, model, &knobs);
    if request.get("stream").and_then(Value::as_bool) == Some(true) {
        sse::response(completion, &knobs)
    } else {
        Json(completion.to_json(&knobs)).into_response()
    }
}

impl Completion {
    fn new(state: &MockState, request: &Value, model: &str, knobs: &Knobs) -> Self {
        let n = state.next_id();
        let tool_calls: Vec<ScriptedCall> = knobs
            .tool_calls
            .iter()
            .enumerate()
            .map(|(k, call)| ScriptedCall {
                id: format!("call_mock_{n}_{k}"),
                name: call.name.clone(),
                arguments: call.arguments.to_string(),
                pieces: call.pieces,
            })
            .collect();
        let reply = if tool_calls.is_empty() || knobs.reply.is_some() {
            reply_for(request)
        } else {
            String::new()
        };
        let call_words: u64 = tool_calls
            .iter()
            .map(|c| word_count(&c.name) + word_count(&c.arguments))
            .sum();
        let completion = if tool_calls.is_empty() {
            completion_tokens(&reply)
        } else {
            word_count(&reply) + call_words
        };
        // A scripted call ends the answer the way OpenAI reports it, unless the test
        // asked for another finish reason.
        let finish_reason = if tool_calls.is_empty() || knobs.finish_reason != "stop" {
            knobs.finish_reason.clone()
        } else {
            "tool_calls".to_owned()
        };
        // OpenAI generates and bills `n` completions; the mock sends one choice but bills
        // like the real API, which is what the gateway's reservation must cover.
        let choices = request.get("n").and_then(Value::as_u64).unwrap_or(1).max(1);
        let completion = completion.saturating_mul(choices);
        let mut usage = usage(prompt_tokens(request), completion, knobs.cached_tokens);
        if knobs.usage_style.as_deref() == Some("deepseek") {
            // DeepSeek reports cache hits beside the prompt, not in prompt_tokens_details.
            let prompt = prompt_tokens(request);
            usage = json!({
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "prompt_cache_hit_tokens": knobs.cached_tokens,
                "prompt_cache_miss_tokens": prompt.saturating_sub(knobs.cached_tokens),
            });
        }
        if knobs.usage_style.as_deref() == Some("dashscope_explicit") {
            // DashScope's explicit cache: hits in cached_tokens, creations beside them.
            usage["prompt_tokens_details"] = json!({
                "cached_tokens": knobs.cached_tokens,
                "cache_creation_input_tokens": knobs.cache_write_tokens,
                "cache_creation": {"ephemeral_5m_input_tokens": knobs.cache_write_tokens},
                "cache_type": "ephemeral",
            });
        }
        if let Some(reported) = &knobs.usage_override {
            usage = reported.clone();
        }
        let include_usage = request
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            == Some(true);
        Self {
            id: format!("chatcmpl-mock-{n}"),
            created: unix_now(),
            model: model.to_owned(),
            reply,
            tool_calls,
            finish_reason,
            usage,
            include_usage,
            service_tier: knobs.service_tier.clone(),
        }
    }

    /// The non-streaming `chat.completion` object.
    fn to_json(&self, knobs: &Knobs) -> Value {
        let mut body = json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_mock",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": self.reply, "refusal": null},
                "logprobs": null,
                "finish_reason": self.finish_reason
            }],
        });
        if !self.tool_calls.is_empty() {
            let message = &mut body["choices"][0]["message"];
            if self.reply.is_empty() {
                message["content"] = Value::Null;
            }
            message["tool_calls"] = self
                .tool_calls
                .iter()
                .map(|c| {
                    json!({"id": c.id, "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments}})
                })
                .collect();
        }
        if let Some(reasoning) = &knobs.reasoning {
            body["choices"][0]["message"]["reasoning_content"] = json!(reasoning);
        }
        if knobs.usage {
            body["usage"] = self.usage.clone();
        }
        self.mark_tier(&mut body);
        body
    }

    /// OpenAI reports the tier that served the request in the body and in every chunk.
    fn mark_tier(&self, object: &mut Value) {
        if let Some(tier) = &self.service_tier {
            object["service_tier"] = json!(tier);
        }
    }

    /// One `chat.completion.chunk` with a single choice.
    pub fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> Value {
        let mut chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_mock",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
        });
        // OpenAI marks every non-usage chunk this way once usage is requested.
        if self.include_usage {
            chunk["usage"] = Value::Null;
        }
        self.mark_tier(&mut chunk);
        chunk
    }

    /// The trailing usage-only chunk of an `include_usage` stream.
    pub fn usage_chunk(&self) -> Value {
        let mut chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_mock",
            "choices": [],
            "usage": self.usage,
        });
        self.mark_tier(&mut chunk);
        chunk
    }
}

fn usage(prompt: u64, completion: u64, cached: u64) -> Value {
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt.saturating_add(completion),
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": 0},
    })
}

fn unix_now() -> u64 {
    // A clock before 1970 is not worth failing a request over.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
