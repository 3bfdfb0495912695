//! OpenAI `chat.completion` → Anthropic Messages response.
//!
//! - `id`: `msg_` + the completion id without its `chatcmpl-` prefix, so logs on both
//!   sides can be matched.
//! - `content`: a `thinking` block first (from `reasoning_content`, or `reasoning` as
//!   some vendors spell it; its `signature` is empty because there is none to give), then
//!   the text, then one `tool_use` per tool call. Tool call `arguments` are parsed into
//!   the `input` object; empty arguments read as `{}`. Arguments that are not a JSON
//!   object also become `{}`: Anthropic's `input` must be an object, and the client's
//!   own schema check then reports the missing fields to the model, which can retry.
//! - `stop_reason`: see [`stop_reason`]. OpenAI does not say which stop sequence
//!   matched, so `stop_sequence` is always null and a matched sequence reads `end_turn`.
//! - `usage`: see `super::usage_from_openai`.

use serde_json::{Map, Value, json};

use super::super::TranslateError;
use super::usage_from_openai;

/// Translates a complete chat answer (the first choice; Anthropic has no `n`).
pub fn message_from_openai(openai_json: &[u8]) -> Result<Value, TranslateError> {
    let answer: Value = serde_json::from_slice(openai_json)
        .map_err(|e| TranslateError::invalid(format!("upstream answer is not JSON: {e}")))?;
    let choice = answer
        .pointer("/choices/0")
        .ok_or_else(|| TranslateError::invalid("upstream answer has no choices"))?;
    let message = choice.get("message").cloned().unwrap_or_else(|| json!({}));
    let mut content = Vec::new();
    let reasoning = str_of(&message, "reasoning_content").or_else(|| str_of(&message, "reasoning"));
    if let Some(thinking) = reasoning.filter(|t| !t.is_empty()) {
        content.push(json!({"type": "thinking", "thinking": thinking, "signature": ""}));
    }
    if let Some(text) = str_of(&message, "content").filter(|t| !t.is_empty()) {
        content.push(json!({"type": "text", "text": text}));
    }
    for call in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let function = call.get("function").cloned().unwrap_or_else(|| json!({}));
        content.push(json!({
            "type": "tool_use",
            "id": str_of(call, "id").unwrap_or_default(),
            "name": str_of(&function, "name").unwrap_or_default(),
            "input": tool_input(str_of(&function, "arguments").unwrap_or_default()),
        }));
    }
    Ok(json!({
        "id": message_id(str_of(&answer, "id").unwrap_or_default()),
        "type": "message",
        "role": "assistant",
        "model": str_of(&answer, "model").unwrap_or_default(),
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason").and_then(Value::as_str)),
        "stop_sequence": null,
        "usage": usage_from_openai(answer.get("usage")),
    }))
}

/// `finish_reason` → `stop_reason`. A missing or unknown reason reads as a normal end.
pub fn stop_reason(finish_reason: Option<&str>) -> &'static str {
    match finish_reason {
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// `msg_…` from an OpenAI completion id; an id that already is one (an Anthropic
/// upstream's) is kept as it is, not doubled.
pub fn message_id(openai_id: &str) -> String {
    if openai_id.starts_with("msg_") {
        return openai_id.to_string();
    }
    let bare = openai_id.strip_prefix("chatcmpl-").unwrap_or(openai_id);
    format!("msg_{bare}")
}

/// Tool arguments as Anthropic's `input` object (see the module comment).
pub fn tool_input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(object)) => Value::Object(object),
        _ => Value::Object(Map::new()),
    }
}

fn str_of<'a>(value: &'a Value, name: &str) -> Option<&'a str> {
    value.get(name).and_then(Value::as_str)
}
