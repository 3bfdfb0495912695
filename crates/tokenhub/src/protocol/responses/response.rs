//! A `chat.completion` body → a Response object.
//!
//! The output items, in the order a Responses model produces them: a `reasoning` item
//! (from `reasoning_content` / `reasoning`, as its summary), a `message` with one
//! `output_text` (or `refusal`) part, then one `function_call` per tool call.
//! `finish_reason: length` makes the Response `incomplete` (`max_output_tokens`).

use serde_json::{Value, json};

use super::{Frame, TranslateError, mark_incomplete, request, usage_from_chat};

/// The Response a complete chat answer stands for.
pub fn response_from_chat(frame: &Frame, chat: &[u8]) -> Result<Value, TranslateError> {
    let chat: Value = serde_json::from_slice(chat)
        .map_err(|e| TranslateError::new(format!("upstream answer is not JSON: {e}"), "model"))?;
    let choice = chat
        .pointer("/choices/0")
        .ok_or_else(|| TranslateError::new("upstream answer has no choice", "model"))?;
    let message = choice.get("message").cloned().unwrap_or(Value::Null);
    let mut output = Vec::new();
    let reasoning = text(&message, "reasoning_content").or_else(|| text(&message, "reasoning"));
    if let Some(reasoning) = reasoning {
        output.push(reasoning_item(frame.item_id("rs", output.len()), reasoning));
    }
    let content = text(&message, "content").map(output_text_part);
    let refusal = text(&message, "refusal").map(refusal_part);
    if let Some(part) = content.or(refusal) {
        output.push(message_item(
            frame.item_id("msg", output.len()),
            "completed",
            vec![part],
        ));
    }
    let calls = message.get("tool_calls").and_then(Value::as_array);
    for call in calls.into_iter().flatten() {
        output.push(function_call_item(
            frame.item_id("fc", output.len()),
            "completed",
            call.get("id").and_then(Value::as_str).unwrap_or_default(),
            call.pointer("/function/name")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            call.pointer("/function/arguments")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        ));
    }
    let mut response = frame.response("completed", output, usage_from_chat(chat.get("usage")));
    mark_incomplete(
        &mut response,
        choice.get("finish_reason").and_then(Value::as_str),
    );
    Ok(response)
}

/// The chat messages a Response's output adds to the conversation (what a turn that
/// continues it replays): output items are valid input items.
pub fn assistant_message(response: &Value) -> Result<Vec<Value>, TranslateError> {
    let output = response.get("output").cloned().unwrap_or_else(|| json!([]));
    request::input_messages(Some(&output))
}

pub fn output_text_part(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

fn refusal_part(refusal: &str) -> Value {
    json!({"type": "refusal", "refusal": refusal})
}

pub fn message_item(id: String, status: &str, content: Vec<Value>) -> Value {
    json!({"id": id, "type": "message", "status": status, "role": "assistant", "content": content})
}

pub fn reasoning_item(id: String, summary: &str) -> Value {
    let summary = if summary.is_empty() {
        json!([])
    } else {
        json!([{"type": "summary_text", "text": summary}])
    };
    json!({"id": id, "type": "reasoning", "summary": summary})
}

pub fn function_call_item(
    id: String,
    status: &str,
    call_id: &str,
    name: &str,
    arguments: &str,
) -> Value {
    json!({"id": id, "type": "function_call", "status": status, "call_id": call_id,
        "name": name, "arguments": arguments})
}

/// A non-empty string member.
fn text<'a>(value: &'a Value, name: &str) -> Option<&'a str> {
    value
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}
