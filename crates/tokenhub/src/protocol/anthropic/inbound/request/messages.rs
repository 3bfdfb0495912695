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
//!   `citations` on blocks are dropped. Any other block type is refused: dropping it
//!   would silently change the answer.
//! - `cache_control` is kept on the content part each block becomes (system, text,
//!   image, document and tool result blocks; a tool result's on its last part), as
//!   LiteLLM and OpenRouter accept it: a turn that carries one stays in parts rather
//!   than being joined into a string. The Anthropic adapter puts it back on the block;
//!   OpenAI-compatible dialects drop it, or keep it where the vendor has explicit
//!   caching (`providers::dialect`).
//! - A `document` with a base64 source becomes a `file` part (`file_data` as a `data:`
//!   URL, `filename` from its title); a plain-text one a text part. URL sources are
//!   refused (an OpenAI file part cannot point at one).

use serde_json::{Value, json};

use super::super::super::TranslateError;
use super::super::super::wire::ImageSource;
use super::Content;

/// The system prompt as one string, text blocks joined by a blank line; or, when a
/// block carries `cache_control`, as text parts (`None` when it is empty).
pub(super) fn system_content(system: Content) -> Result<Option<Value>, TranslateError> {
    let blocks = match system {
        Content::Text(text) if text.is_empty() => return Ok(None),
        Content::Text(text) => return Ok(Some(Value::String(text))),
        Content::Blocks(blocks) => blocks,
    };
    let mut parts = Vec::new();
    for block in &blocks {
        match kind(block) {
            "text" => parts.push(cached(
                block,
                json!({"type": "text", "text": text_of(block)}),
            )),
            other => return Err(unsupported("system", other)),
        }
    }
    Ok(joined_unless_cached(parts, "\n\n"))
}

/// Text parts as one string joined by `separator` unless one carries `cache_control`
/// (or is not text); `None` when there are none or all are empty.
fn joined_unless_cached(parts: Vec<Value>, separator: &str) -> Option<Value> {
    if parts.is_empty() {
        return None;
    }
    if parts
        .iter()
        .all(|p| p["type"] == "text" && p.get("cache_control").is_none())
    {
        let texts: Vec<&str> = parts.iter().filter_map(|p| p["text"].as_str()).collect();
        let text = texts.join(separator);
        return (!text.is_empty()).then_some(Value::String(text));
    }
    Some(Value::Array(parts))
}

/// `part` with the block's `cache_control`, if it has one.
fn cached(block: &Value, mut part: Value) -> Value {
    if let Some(cache_control) = block.get("cache_control") {
        part["cache_control"] = cache_control.clone();
    }
    part
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
            "text" => parts.push(cached(
                block,
                json!({"type": "text", "text": text_of(block)}),
            )),
            "image" => parts.push(cached(block, image_part(block)?)),
            "document" => parts.push(cached(block, document_part(block)?)),
            "tool_result" => {
                let (content, images) = tool_result_content(block)?;
                let id = block.get("tool_use_id").and_then(Value::as_str);
                chat.push(json!({"role": "tool", "tool_call_id": id.unwrap_or_default(), "content": content}));
                parts.extend(images);
            }
            "redacted_thinking" | "thinking" => {}
            other => return Err(unsupported("user message", other)),
        }
    }
    if parts.is_empty() {
        return Ok(()); // a turn of tool results only
    }
    let content = joined_unless_cached(parts, "\n").unwrap_or(Value::String(String::new()));
    chat.push(json!({"role": "user", "content": content}));
    Ok(())
}

/// A `document` block as an OpenAI part (see the module comment).
fn document_part(block: &Value) -> Result<Value, TranslateError> {
    let source = block.get("source").cloned().unwrap_or(Value::Null);
    let data = source
        .get("data")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let media_type = source.get("media_type").and_then(Value::as_str);
    match source.get("type").and_then(Value::as_str) {
        Some("base64") => {
            let mut file = json!({"file_data": format!(
                "data:{};base64,{data}",
                media_type.unwrap_or("application/pdf")
            )});
            if let Some(title) = block.get("title").and_then(Value::as_str) {
                file["filename"] = Value::from(title);
            }
            Ok(json!({"type": "file", "file": file}))
        }
        Some("text") => Ok(json!({"type": "text", "text": data})),
        other => Err(TranslateError::invalid(format!(
            "document source type `{}` is not supported on this gateway (base64 and text are)",
            other.unwrap_or("")
        ))),
    }
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
            "text" => texts.push(cached(
                block,
                json!({"type": "text", "text": text_of(block)}),
            )),
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
        joined_unless_cached(texts, "\n").unwrap_or(Value::String(String::new()))
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

/// A tool result's content (text blocks joined by a newline, or text parts when one
/// carries `cache_control`; the block's own goes on the last part) and its images as
/// content parts.
fn tool_result_content(block: &Value) -> Result<(Value, Vec<Value>), TranslateError> {
    let mut texts = Vec::new();
    let mut images = Vec::new();
    match block.get("content") {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => texts.push(json!({"type": "text", "text": text})),
        Some(Value::Array(blocks)) => {
            for inner in blocks {
                match kind(inner) {
                    "text" => texts.push(cached(
                        inner,
                        json!({"type": "text", "text": text_of(inner)}),
                    )),
                    "image" => images.push(cached(inner, image_part(inner)?)),
                    other => return Err(unsupported("tool_result", other)),
                }
            }
        }
        Some(_) => {
            return Err(TranslateError::invalid(
                "tool_result content must be a string or a list of content blocks",
            ));
        }
    }
    if let Some(last) = texts.last_mut() {
        *last = cached(block, last.take());
    }
    let content = joined_unless_cached(texts, "\n").unwrap_or(Value::String(String::new()));
    Ok((content, images))
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
