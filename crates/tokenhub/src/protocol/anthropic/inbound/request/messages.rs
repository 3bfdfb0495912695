//! Messages conversation → OpenAI chat messages.
//!
//! - A user turn: each `tool_result` becomes its own `role: "tool"` message, in order,
//!   before the rest of the turn (OpenAI requires tool answers right after the
//!   assistant's calls). Its content is flattened to text, blocks joined by a newline;
//!   images inside it move to the user message that follows. The remaining text and
//!   images form one user message: a string when it is only text (vendors that take no
//!   content arrays still accept it), else content parts with images as `image_url`
//!   (base64 sources as `data:` URLs). `is_error` has no OpenAI equivalent and is dropped.
//! - An assistant turn: text → `content`, thinking → `reasoning_content` (DeepSeek and
//!   Kimi require it back on tool turns), `tool_use` → `tool_calls` with the input
//!   object serialised as the `arguments` string. `content` is null when there is no text.
//! - `redacted_thinking` is dropped (its payload is encrypted for Anthropic only);
//!   `cache_control` and `citations` on blocks are dropped. Any other block type is
//!   refused: dropping a document would silently change the answer.

use serde_json::{Value, json};

use super::super::super::TranslateError;
use super::super::super::wire::ImageSource;
use super::Content;

/// The system prompt as one string; text blocks joined by a blank line.
pub(super) fn system_text(system: Content) -> Result<String, TranslateError> {
    let blocks = match system {
        Content::Text(text) => return Ok(text),
        Content::Blocks(blocks) => blocks,
    };
    let mut texts = Vec::new();
    for block in &blocks {
        match kind(block) {
            "text" => texts.push(text_of(block)),
            other => return Err(unsupported("system", other)),
        }
    }
    Ok(texts.join("\n\n"))
}

pub(super) fn user(content: Content, chat: &mut Vec<Value>) -> Result<(), TranslateError> {
    let blocks = match content {
        Content::Text(text) => {
            chat.push(json!({"role": "user", "content": text}));
            return Ok(());
        }
        Content::Blocks(blocks) => blocks,
    };
    let mut parts = Vec::new();
    for block in &blocks {
        match kind(block) {
            "text" => parts.push(json!({"type": "text", "text": text_of(block)})),
            "image" => parts.push(image_part(block)?),
            "tool_result" => {
                let (text, images) = tool_result_content(block)?;
                let id = block.get("tool_use_id").and_then(Value::as_str);
                chat.push(json!({"role": "tool", "tool_call_id": id.unwrap_or_default(), "content": text}));
                parts.extend(images);
            }
            "redacted_thinking" | "thinking" => {}
            other => return Err(unsupported("user message", other)),
        }
    }
    if parts.is_empty() {
        return Ok(()); // a turn of tool results only
    }
    let only_text = parts.iter().all(|p| p["type"] == "text");
    let content = if only_text {
        let texts: Vec<&str> = parts.iter().filter_map(|p| p["text"].as_str()).collect();
        Value::String(texts.join("\n"))
    } else {
        Value::Array(parts)
    };
    chat.push(json!({"role": "user", "content": content}));
    Ok(())
}

pub(super) fn assistant(content: Content, chat: &mut Vec<Value>) -> Result<(), TranslateError> {
    let blocks = match content {
        Content::Text(text) => {
            chat.push(json!({"role": "assistant", "content": text}));
            return Ok(());
        }
        Content::Blocks(blocks) => blocks,
    };
    let mut texts = Vec::new();
    let mut reasoning = Vec::new();
    let mut calls = Vec::new();
    for block in &blocks {
        match kind(block) {
            "text" => texts.push(text_of(block)),
            "thinking" => reasoning.push(
                block
                    .get("thinking")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            ),
            "tool_use" => {
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                calls.push(json!({
                    "id": block.get("id").and_then(Value::as_str).unwrap_or_default(),
                    "type": "function",
                    "function": {
                        "name": block.get("name").and_then(Value::as_str).unwrap_or_default(),
                        "arguments": input.to_string(),
                    },
                }));
            }
            "redacted_thinking" => {}
            other => return Err(unsupported("assistant message", other)),
        }
    }
    let mut message = json!({"role": "assistant"});
    message["content"] = if texts.is_empty() && !calls.is_empty() {
        Value::Null
    } else {
        Value::String(texts.join("\n"))
    };
    if !reasoning.is_empty() {
        message["reasoning_content"] = Value::String(reasoning.concat());
    }
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    chat.push(message);
    Ok(())
}

/// A tool result's text (blocks joined by a newline) and its images as content parts.
fn tool_result_content(block: &Value) -> Result<(String, Vec<Value>), TranslateError> {
    match block.get("content") {
        None | Some(Value::Null) => Ok((String::new(), Vec::new())),
        Some(Value::String(text)) => Ok((text.clone(), Vec::new())),
        Some(Value::Array(blocks)) => {
            let mut texts = Vec::new();
            let mut images = Vec::new();
            for inner in blocks {
                match kind(inner) {
                    "text" => texts.push(text_of(inner)),
                    "image" => images.push(image_part(inner)?),
                    other => return Err(unsupported("tool_result", other)),
                }
            }
            Ok((texts.join("\n"), images))
        }
        Some(_) => Err(TranslateError::invalid(
            "tool_result content must be a string or a list of content blocks",
        )),
    }
}

fn image_part(block: &Value) -> Result<Value, TranslateError> {
    let source: ImageSource = block
        .get("source")
        .cloned()
        .ok_or_else(|| TranslateError::invalid("image block without a source"))
        .and_then(|s| {
            serde_json::from_value(s).map_err(|e| {
                TranslateError::invalid(format!(
                    "image source is not supported on this gateway (base64 and url are): {e}"
                ))
            })
        })?;
    let url = match source {
        ImageSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
        ImageSource::Url { url } => url,
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

fn kind(block: &Value) -> &str {
    block.get("type").and_then(Value::as_str).unwrap_or("")
}

fn text_of(block: &Value) -> String {
    block
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn unsupported(place: &str, kind: &str) -> TranslateError {
    TranslateError::invalid(format!(
        "{place}: content block type `{kind}` is not supported on this gateway"
    ))
}
