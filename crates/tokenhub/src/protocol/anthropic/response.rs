//! Anthropic Messages response → OpenAI `chat.completion` (shared/docs/providers.md §3.7).
//!
//! Thinking text becomes `reasoning_content`; the thinking blocks themselves, signatures
//! included, ride in the id of the tool call that follows them (`carry`), so the next turn
//! of a tool loop can send them back.

use serde_json::{Value, json};

use super::TranslateError;
use super::carry;
use super::wire::{ContentBlock, MessagesResponse, Usage};

/// Translates a complete Messages answer. `created` is the Unix time to report (Anthropic
/// sends none). The upstream's `id` and `model` are kept, as the OpenAI pass-through does.
pub fn response_to_openai(anthropic_json: &[u8], created: i64) -> Result<Value, TranslateError> {
    let value: Value = serde_json::from_slice(anthropic_json)
        .map_err(|e| TranslateError::invalid(format!("upstream answer is not JSON: {e}")))?;
    if value.get("type").and_then(Value::as_str) == Some("error") {
        let message = value
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or("upstream error");
        return Err(TranslateError::invalid(message));
    }
    let response: MessagesResponse = serde_json::from_value(value).map_err(|e| {
        TranslateError::invalid(format!("upstream answer is not an Anthropic message: {e}"))
    })?;
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut tool_calls = Vec::new();
    // Thinking blocks since the last tool call, carried in the next one's id (`carry`).
    let mut thinking_blocks = Vec::new();
    for block in response.content {
        match block {
            ContentBlock::Text { text: piece, .. } => text.push_str(&piece),
            ContentBlock::Thinking { ref thinking, .. } => {
                reasoning.push_str(thinking);
                thinking_blocks.push(block);
            }
            ContentBlock::RedactedThinking { .. } => thinking_blocks.push(block),
            ContentBlock::ToolUse {
                id, name, input, ..
            } => tool_calls.push(json!({
                "id": carry::tool_call_id(&id, &std::mem::take(&mut thinking_blocks)),
                "type": "function",
                "function": {"name": name, "arguments": input.to_string()},
            })),
            _ => {}
        }
    }
    let mut message = json!({"role": "assistant"});
    // OpenAI's shape: `content` is null when the answer is only tool calls.
    message["content"] = if text.is_empty() && !tool_calls.is_empty() {
        Value::Null
    } else {
        Value::String(text)
    };
    if !reasoning.is_empty() {
        message["reasoning_content"] = Value::String(reasoning);
    }
    if !tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(tool_calls);
    }
    Ok(json!({
        "id": response.id,
        "object": "chat.completion",
        "created": created,
        "model": response.model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason(response.stop_reason.as_deref()),
        }],
        "usage": usage_to_openai(&response.usage),
    }))
}

/// `stop_reason` → `finish_reason`. A missing or unknown reason reads as a normal stop.
pub fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens" | "model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        // end_turn, stop_sequence, pause_turn
        _ => "stop",
    }
}

/// Anthropic usage in OpenAI's shape; `prompt_tokens` includes both cache classes. The
/// part of the writes made for an hour goes in `cache_write_1h_tokens`, only when there
/// is one. Sums saturate: a wrapped sum would turn an absurd count into a small one, a
/// free answer.
pub fn usage_to_openai(usage: &Usage) -> Value {
    let read = usage.cache_read_input_tokens.unwrap_or(0);
    let creation = usage.cache_creation.unwrap_or_default();
    let written_1h = creation.ephemeral_1h_input_tokens.unwrap_or(0);
    let written = usage.cache_creation_input_tokens.unwrap_or_else(|| {
        creation
            .ephemeral_5m_input_tokens
            .unwrap_or(0)
            .saturating_add(written_1h)
    });
    let prompt = usage
        .input_tokens
        .unwrap_or(0)
        .saturating_add(read)
        .saturating_add(written);
    let completion = usage.output_tokens.unwrap_or(0);
    let mut details = json!({"cached_tokens": read, "cache_write_tokens": written});
    if written_1h > 0 {
        details["cache_write_1h_tokens"] = json!(written_1h.min(written));
    }
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt.saturating_add(completion),
        "prompt_tokens_details": details,
    })
}
