//! Per-request behaviour knobs, read from the optional `"mock"` object of the
//! request body (the gateway under test is expected to pass it through).

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

pub use crate::messages::ToolCallKnob;

use crate::state::Defaults;

/// Knobs as written in the request; unknown names are rejected so a typo in a
/// test fails loudly instead of silently testing the default behaviour.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    ttfb_ms: Option<u64>,
    chunk_delay_ms: Option<u64>,
    chunks: Option<usize>,
    reply: Option<String>,
    cached_tokens: Option<u64>,
    fail_status: Option<u16>,
    fail_times: Option<u32>,
    fail_key: Option<String>,
    fail_keys: Option<Vec<String>>,
    hang: Option<bool>,
    drop_after_chunks: Option<usize>,
    keepalive: Option<bool>,
    usage: Option<bool>,
    usage_in_choice: Option<bool>,
    mid_stream_error: Option<bool>,
    error_message: Option<String>,
    split_events: Option<bool>,
    // Read by `tokens::reply_for` from the body; listed so it passes the name check.
    #[allow(dead_code)]
    echo_tool_result: Option<bool>,
    // Read by `middleware::fail_for_keys`; listed so it passes the name check.
    #[allow(dead_code)]
    echo_key: Option<bool>,
    // OpenAI and Anthropic dialects.
    tool_call: Option<ToolCalls>,
    // Anthropic dialect (`/v1/messages`) only.
    cache_read_tokens: Option<u64>,
    cache_write_tokens: Option<u64>,
    error_event: Option<bool>,
    redacted_thinking: Option<bool>,
    // Gemini dialect only.
    thought_signature: Option<String>,
    // OpenAI-compatible vendors' dialects.
    finish_reason: Option<String>,
    fail_body: Option<Value>,
    reasoning: Option<String>,
    usage_style: Option<String>,
    usage_override: Option<Value>,
    event_members: Option<Value>,
    // Billing: OpenAI's `service_tier` in the answer; Anthropic 1-hour cache writes.
    service_tier: Option<String>,
    cache_write_1h_tokens: Option<u64>,
}

/// `tool_call` takes one call or a list of them.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ToolCalls {
    One(ToolCallKnob),
    Many(Vec<ToolCallKnob>),
}

/// Resolved knobs: request values with server [`Defaults`] filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Knobs {
    pub ttfb: Duration,
    pub chunk_delay: Duration,
    pub chunks: usize,
    pub reply: Option<String>,
    pub cached_tokens: u64,
    pub fail_status: Option<u16>,
    pub fail_times: Option<u32>,
    /// Counter key for `fail_times`; requests without one share `""`.
    pub fail_key: String,
    /// Upstream API keys that get `fail_status` (default 500); requests presenting any
    /// other key succeed. Empty = `fail_status` applies whatever the key.
    pub fail_keys: Vec<String>,
    pub hang: bool,
    pub drop_after_chunks: Option<usize>,
    pub keepalive: bool,
    pub usage: bool,
    pub usage_in_choice: bool,
    pub mid_stream_error: bool,
    /// The message of the `mid_stream_error` event (default "mock mid-stream failure").
    pub error_message: Option<String>,
    pub split_events: bool,
    /// Anthropic `cache_read_input_tokens` (part of the prompt, excluded from `input_tokens`).
    pub cache_read_tokens: u64,
    /// Anthropic `cache_creation_input_tokens`, likewise.
    pub cache_write_tokens: u64,
    /// Answer with these tool calls (Anthropic `tool_use` blocks, OpenAI `tool_calls`),
    /// after the text only if `reply` is set; streamed, each call's arguments arrive in
    /// `pieces` deltas.
    pub tool_calls: Vec<ToolCallKnob>,
    /// Anthropic: an in-band `error` event after the text, instead of the normal end.
    pub error_event: bool,
    /// Anthropic: with thinking on, a `redacted_thinking` block after the thinking block.
    pub redacted_thinking: bool,
    /// Gemini: sign the first function call with this, and refuse a request whose model
    /// turns do not carry it back on their first call.
    pub thought_signature: Option<String>,
    /// The final `finish_reason` (e.g. Zhipu's `sensitive` or `network_error`).
    pub finish_reason: String,
    /// The body sent with `fail_status` instead of OpenAI's error shape (vendor dialects).
    pub fail_body: Option<Value>,
    /// `reasoning_content` sent before the answer (DeepSeek, Qwen, GLM, Kimi).
    pub reasoning: Option<String>,
    /// `"deepseek"`: cache hits as `prompt_cache_hit_tokens`/`prompt_cache_miss_tokens`.
    /// `"dashscope_explicit"`: DashScope's explicit context cache: `cached_tokens` are hits
    /// and `cache_write_tokens` creations of it, with `cache_type: "ephemeral"` (plain
    /// `cached_tokens` without this style is how DashScope reports implicit hits).
    pub usage_style: Option<String>,
    /// OpenAI dialect (chat and Responses): report this `usage` object verbatim (a hostile or buggy upstream's
    /// figures) instead of the counted one.
    pub usage_override: Option<Value>,
    /// Responses streams: members merged into every event of a type, by type (e.g.
    /// `{"response.completed": {"sequence_number": "last"}}`: a buggy upstream's events).
    pub event_members: Option<Value>,
    /// OpenAI dialects: the `service_tier` the answer says served it (`priority`, `flex`).
    pub service_tier: Option<String>,
    /// Anthropic dialect: prompt tokens written to the 1-hour cache, reported in
    /// `usage.cache_creation.ephemeral_1h_input_tokens` and counted in
    /// `cache_creation_input_tokens` beside `cache_write_tokens` (the 5-minute writes).
    pub cache_write_1h_tokens: u64,
}

impl Knobs {
    /// Reads `body["mock"]`; absent or null means all defaults.
    pub fn from_body(body: &Value, defaults: &Defaults) -> Result<Self, String> {
        let raw = match body.get("mock") {
            None | Some(Value::Null) => Raw::default(),
            Some(v) => Raw::deserialize(v).map_err(|e| format!("invalid mock knobs: {e}"))?,
        };
        if let Some(status) = raw.fail_status
            && !(100..=999).contains(&status)
        {
            return Err(format!(
                "invalid mock knobs: fail_status {status} out of range"
            ));
        }
        Ok(Self {
            ttfb: Duration::from_millis(raw.ttfb_ms.unwrap_or(defaults.ttfb_ms)),
            chunk_delay: Duration::from_millis(
                raw.chunk_delay_ms.unwrap_or(defaults.chunk_delay_ms),
            ),
            chunks: raw.chunks.unwrap_or(defaults.chunks),
            reply: raw.reply,
            cached_tokens: raw.cached_tokens.unwrap_or(0),
            fail_status: raw.fail_status,
            fail_times: raw.fail_times,
            fail_key: raw.fail_key.unwrap_or_default(),
            fail_keys: raw.fail_keys.unwrap_or_default(),
            hang: raw.hang.unwrap_or(false),
            drop_after_chunks: raw.drop_after_chunks,
            keepalive: raw.keepalive.unwrap_or(false),
            usage: raw.usage.unwrap_or(true),
            usage_in_choice: raw.usage_in_choice.unwrap_or(false),
            mid_stream_error: raw.mid_stream_error.unwrap_or(false),
            error_message: raw.error_message,
            split_events: raw.split_events.unwrap_or(false),
            cache_read_tokens: raw.cache_read_tokens.unwrap_or(0),
            cache_write_tokens: raw.cache_write_tokens.unwrap_or(0),
            tool_calls: match raw.tool_call {
                None => Vec::new(),
                Some(ToolCalls::One(call)) => vec![call],
                Some(ToolCalls::Many(calls)) => calls,
            },
            error_event: raw.error_event.unwrap_or(false),
            redacted_thinking: raw.redacted_thinking.unwrap_or(false),
            thought_signature: raw.thought_signature,
            finish_reason: raw.finish_reason.unwrap_or_else(|| "stop".to_owned()),
            fail_body: raw.fail_body,
            reasoning: raw.reasoning,
            usage_style: raw.usage_style,
            usage_override: raw.usage_override,
            event_members: raw.event_members,
            service_tier: raw.service_tier,
            cache_write_1h_tokens: raw.cache_write_1h_tokens.unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn absent_knobs_use_defaults() {
        let defaults = Defaults {
            ttfb_ms: 5,
            chunk_delay_ms: 7,
            chunks: 3,
            ..Defaults::default()
        };
        for body in [json!({}), json!({"mock": null}), json!({"mock": {}})] {
            let k = Knobs::from_body(&body, &defaults).expect("valid");
            assert_eq!(k.ttfb, Duration::from_millis(5));
            assert_eq!(k.chunk_delay, Duration::from_millis(7));
            assert_eq!(k.chunks, 3);
            assert!(k.usage && !k.hang && k.fail_status.is_none());
            assert_eq!(k.fail_key, "");
        }
    }

    #[test]
    fn knobs_override_defaults() {
        let body = json!({"mock": {
            "ttfb_ms": 1, "chunks": 9, "reply": "r", "cached_tokens": 4,
            "fail_status": 503, "fail_times": 2, "fail_key": "k",
            "usage": false, "usage_in_choice": true, "drop_after_chunks": 1
        }});
        let k = Knobs::from_body(&body, &Defaults::default()).expect("valid");
        assert_eq!(k.ttfb, Duration::from_millis(1));
        assert_eq!(k.chunks, 9);
        assert_eq!(k.reply.as_deref(), Some("r"));
        assert_eq!(k.cached_tokens, 4);
        assert_eq!((k.fail_status, k.fail_times), (Some(503), Some(2)));
        assert_eq!(k.fail_key, "k");
        assert!(!k.usage && k.usage_in_choice);
        assert_eq!(k.drop_after_chunks, Some(1));
        let keyed = json!({"mock": {"fail_keys": ["a", "b"], "fail_status": 429}});
        let k = Knobs::from_body(&keyed, &Defaults::default()).expect("valid");
        assert_eq!(k.fail_keys, ["a", "b"]);
    }

    #[test]
    fn anthropic_knobs() {
        let call = json!({"name": "f", "arguments": {"a": 1}, "pieces": 2});
        let body = json!({"mock": {"cache_read_tokens": 3, "cache_write_tokens": 4,
                                   "tool_call": call, "error_event": true}});
        let k = Knobs::from_body(&body, &Defaults::default()).expect("valid");
        assert_eq!((k.cache_read_tokens, k.cache_write_tokens), (3, 4));
        assert!(k.error_event);
        assert_eq!(k.tool_calls.len(), 1);
        assert_eq!(k.tool_calls[0].name, "f");
        assert_eq!(k.tool_calls[0].pieces, 2);
        let two = json!({"mock": {"tool_call": [{"name": "a"}, {"name": "b"}]}});
        let k = Knobs::from_body(&two, &Defaults::default()).expect("valid");
        assert_eq!(k.tool_calls.len(), 2);
        assert_eq!(k.tool_calls[1].arguments, json!({}));
        assert_eq!(k.tool_calls[1].pieces, 1);
    }

    #[test]
    fn bad_knobs_are_rejected() {
        let d = Defaults::default();
        for mock in [
            json!({"ttfb": 1}),
            json!({"chunks": "two"}),
            json!({"fail_status": 42}),
            json!("x"),
        ] {
            assert!(
                Knobs::from_body(&json!({ "mock": mock }), &d).is_err(),
                "{mock}"
            );
        }
    }
}
