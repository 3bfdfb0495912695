//! Gemini `GenerateContentResponse` → OpenAI `chat.completion`.

use serde_json::{Value, json};

use super::TranslateError;
use super::signature::call_id;
use super::wire::{GenerateContentResponse, Part, UsageMetadata};

/// Used as `id` when the upstream sends no `responseId`.
pub const FALLBACK_ID: &str = "chatcmpl-gemini";

/// Translates a complete answer. `created` is the Unix time to report (Gemini sends
/// none); `model` is reported when the answer names no `modelVersion`.
pub fn response_to_openai(
    gemini_json: &[u8],
    created: i64,
    model: &str,
) -> Result<Value, TranslateError> {
    let response: GenerateContentResponse = serde_json::from_slice(gemini_json).map_err(|e| {
        TranslateError::invalid(format!("upstream answer is not a Gemini response: {e}"))
    })?;
    if let Some(error) = response.error {
        return Err(TranslateError::invalid(error.message));
    }
    let candidate = response.candidates.into_iter().next();
    let parts = candidate
        .as_ref()
        .and_then(|c| c.content.as_ref())
        .map_or(&[][..], |content| content.parts.as_slice());
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut tool_calls = Vec::new();
    for part in parts {
        match classify(part) {
            Piece::Text(piece) => text.push_str(piece),
            Piece::Thought(piece) => reasoning.push_str(piece),
            Piece::Call(name, arguments, signature) => tool_calls.push(json!({
                "id": call_id(tool_calls.len(), signature),
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            })),
            Piece::Nothing => {}
        }
    }
    let reason = match &candidate {
        Some(candidate) => {
            finish_reason(candidate.finish_reason.as_deref(), !tool_calls.is_empty())
                .unwrap_or("stop")
        }
        // No candidate at all: the prompt was blocked (`promptFeedback.blockReason`).
        None => "content_filter",
    };
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
        "id": response.response_id.as_deref().unwrap_or(FALLBACK_ID),
        "object": "chat.completion",
        "created": created,
        "model": response.model_version.as_deref().unwrap_or(model),
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": reason,
        }],
        "usage": usage_to_openai(&response.usage_metadata.unwrap_or_default()),
    }))
}

/// What one answer part means to an OpenAI client.
pub(super) enum Piece<'a> {
    Text(&'a str),
    Thought(&'a str),
    /// A function call: its name, its arguments as a JSON string, and its
    /// `thoughtSignature` if the model signed it.
    Call(&'a str, String, Option<&'a str>),
    /// A part OpenAI has no place for (a bare `thoughtSignature`, executable code, …).
    Nothing,
}

pub(super) fn classify(part: &Part) -> Piece<'_> {
    if let Some(call) = &part.function_call {
        let arguments = if call.args.is_null() {
            "{}".to_string()
        } else {
            call.args.to_string()
        };
        return Piece::Call(&call.name, arguments, part.thought_signature.as_deref());
    }
    match &part.text {
        Some(text) if part.thought == Some(true) => Piece::Thought(text),
        Some(text) => Piece::Text(text),
        None => Piece::Nothing,
    }
}

/// `finishReason` → `finish_reason`; `None` while the candidate is unfinished. A normal
/// stop that produced function calls is `tool_calls`, as OpenAI reports it.
pub fn finish_reason(reason: Option<&str>, called_tools: bool) -> Option<&'static str> {
    Some(match reason? {
        "FINISH_REASON_UNSPECIFIED" => return None,
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            "content_filter"
        }
        // STOP, OTHER, MALFORMED_FUNCTION_CALL, LANGUAGE, and reasons newer than this code.
        _ if called_tools => "tool_calls",
        _ => "stop",
    })
}

/// Gemini usage in OpenAI's shape (see the module docs of `protocol::gemini`). Sums
/// saturate: a wrapped sum would turn an absurd count into a small one, a free answer.
pub fn usage_to_openai(usage: &UsageMetadata) -> Value {
    let prompt = usage
        .prompt_token_count
        .unwrap_or(0)
        .saturating_add(usage.tool_use_prompt_token_count.unwrap_or(0));
    let thoughts = usage.thoughts_token_count.unwrap_or(0);
    let completion = usage
        .candidates_token_count
        .unwrap_or(0)
        .saturating_add(thoughts);
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt.saturating_add(completion),
        "prompt_tokens_details": {"cached_tokens": usage.cached_content_token_count.unwrap_or(0)},
        "completion_tokens_details": {"reasoning_tokens": thoughts},
    })
}
