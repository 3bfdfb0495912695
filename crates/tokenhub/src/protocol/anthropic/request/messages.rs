//! OpenAI `messages` → Anthropic `system` + `messages`.
//!
//! - `system` and `developer` messages, wherever they are, become `system` text blocks
//!   in order.
//! - `tool` messages become `tool_result` blocks of a user turn.
//! - Consecutive turns of the same role are merged into one, as Anthropic needs
//!   alternating turns: several tool results become one user turn, and user text that
//!   follows them joins that turn after the `tool_result` blocks.
//! - An assistant's `tool_calls` become `tool_use` blocks after its text. The thinking
//!   blocks a call's id carries (`carry`) go back in front of it, those of the first call
//!   in front of the text too, so the turn starts with its thinking as Anthropic requires.
//!   `reasoning_content` is dropped: it is unsigned, and Anthropic refuses thinking it did
//!   not sign.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::super::TranslateError;
use super::super::carry;
use super::super::wire::{ContentBlock, ImageSource, Message, Role, ToolResultContent};

#[derive(Deserialize)]
pub(super) struct ChatMessage {
    role: String,
    #[serde(default)]
    content: Option<Content>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCall>>,
    #[serde(default)]
    tool_call_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

/// A content part; read loosely so an unknown `type` gets a clear refusal, not a parse error.
#[derive(Deserialize)]
struct Part {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    image_url: Option<ImageUrl>,
    /// Anthropic's prompt-caching marker, accepted on OpenAI parts as LiteLLM does.
    #[serde(default)]
    cache_control: Option<Value>,
    #[serde(default)]
    file: Option<FilePart>,
}

/// An OpenAI `file` part's `file`: inline data (a `data:` URL) is sent as a document;
/// an uploaded `file_id` means nothing to Anthropic.
#[derive(Deserialize)]
struct FilePart {
    #[serde(default)]
    file_data: Option<String>,
    #[serde(default)]
    filename: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ImageUrl {
    Object { url: String },
    Plain(String),
}

#[derive(Deserialize)]
struct ToolCall {
    id: String,
    function: FunctionCall,
}

#[derive(Deserialize)]
struct FunctionCall {
    name: String,
    #[serde(default)]
    arguments: String,
}

pub(super) fn translate(
    chat: Vec<ChatMessage>,
) -> Result<(Vec<ContentBlock>, Vec<Message>), TranslateError> {
    let mut system = Vec::new();
    let mut turns: Vec<Message> = Vec::new();
    for (i, message) in chat.into_iter().enumerate() {
        let (role, blocks) = match message.role.as_str() {
            "system" | "developer" => {
                system.extend(content_blocks(message.content, i, false)?);
                continue;
            }
            "user" => (Role::User, content_blocks(message.content, i, true)?),
            "assistant" => (Role::Assistant, assistant_blocks(message, i)?),
            "tool" => (Role::User, vec![tool_result(message, i)?]),
            "function" => {
                return Err(TranslateError::unsupported(
                    "the legacy `function` role (use `tool`)",
                ));
            }
            other => {
                return Err(TranslateError::invalid(format!(
                    "messages[{i}].role '{other}' is not a chat role"
                )));
            }
        };
        if blocks.is_empty() {
            // Anthropic refuses empty turns; an empty one carries nothing anyway.
            continue;
        }
        match turns.last_mut() {
            Some(last) if last.role == role => last.content.extend(blocks),
            _ => turns.push(Message {
                role,
                content: blocks,
            }),
        }
    }
    Ok((system, turns))
}

/// Text (and, for users, image) blocks of a message's content. Empty text is skipped:
/// Anthropic refuses empty text blocks.
fn content_blocks(
    content: Option<Content>,
    i: usize,
    images: bool,
) -> Result<Vec<ContentBlock>, TranslateError> {
    let parts = match content {
        None => return Ok(Vec::new()),
        Some(Content::Text(text)) if text.is_empty() => return Ok(Vec::new()),
        Some(Content::Text(text)) => return Ok(vec![ContentBlock::text(text)]),
        Some(Content::Parts(parts)) => parts,
    };
    let mut blocks = Vec::with_capacity(parts.len());
    for (j, part) in parts.into_iter().enumerate() {
        let mut extra = Map::new();
        if let Some(cache_control) = part.cache_control {
            extra.insert("cache_control".into(), cache_control);
        }
        match part.kind.as_str() {
            // An assistant's refusal part is text it said.
            "text" | "refusal" => match part.text {
                Some(text) if !text.is_empty() => blocks.push(ContentBlock::Text { text, extra }),
                _ => {}
            },
            "image_url" if images => {
                let Some(image) = part.image_url else {
                    return Err(TranslateError::invalid(format!(
                        "messages[{i}].content[{j}].image_url is missing"
                    )));
                };
                let url = match image {
                    ImageUrl::Object { url } | ImageUrl::Plain(url) => url,
                };
                blocks.push(ContentBlock::Image {
                    source: image_source(url, i, j)?,
                    extra,
                });
            }
            "input_audio" => return Err(TranslateError::unsupported("audio input")),
            "file" if images => {
                let Some(FilePart {
                    file_data: Some(data),
                    filename,
                }) = part.file
                else {
                    return Err(TranslateError::unsupported(
                        "file input by `file_id` (send `file_data`)",
                    ));
                };
                if let Some(title) = filename {
                    extra.insert("title".into(), Value::from(title));
                }
                blocks.push(ContentBlock::Document {
                    source: image_source(data, i, j)?,
                    extra,
                });
            }
            "file" => return Err(TranslateError::unsupported("file input")),
            other => {
                return Err(TranslateError::unsupported(&format!(
                    "content part type '{other}' in messages[{i}]"
                )));
            }
        }
    }
    Ok(blocks)
}

/// `data:<mime>;base64,<data>` → an inline image; `http(s)://` → an image Anthropic fetches.
fn image_source(url: String, i: usize, j: usize) -> Result<ImageSource, TranslateError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (media_type, data) = rest
            .split_once(";base64,")
            .filter(|(media_type, _)| !media_type.is_empty())
            .ok_or_else(|| {
                TranslateError::invalid(format!(
                    "messages[{i}].content[{j}].image_url must be a base64 data URL (data:<type>;base64,…) or an http(s) URL"
                ))
            })?;
        return Ok(ImageSource::Base64 {
            media_type: media_type.to_string(),
            data: data.to_string(),
        });
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(ImageSource::Url { url });
    }
    Err(TranslateError::invalid(format!(
        "messages[{i}].content[{j}].image_url must be a base64 data URL (data:<type>;base64,…) or an http(s) URL"
    )))
}

fn assistant_blocks(message: ChatMessage, i: usize) -> Result<Vec<ContentBlock>, TranslateError> {
    let mut text = Some(content_blocks(message.content, i, false)?);
    let mut blocks = Vec::new();
    for (k, call) in message.tool_calls.into_iter().flatten().enumerate() {
        let (id, thinking) = carry::split(&call.id);
        blocks.extend(thinking);
        blocks.extend(text.take().into_iter().flatten());
        blocks.push(ContentBlock::ToolUse {
            id: id.to_string(),
            name: call.function.name,
            input: tool_input(&call.function.arguments, i, k)?,
            extra: Map::new(),
        });
    }
    blocks.extend(text.into_iter().flatten());
    Ok(blocks)
}

/// The arguments JSON string as the object Anthropic wants. Empty means no arguments.
fn tool_input(arguments: &str, i: usize, k: usize) -> Result<Value, TranslateError> {
    if arguments.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    let where_ = format!("messages[{i}].tool_calls[{k}].function.arguments");
    match serde_json::from_str::<Value>(arguments) {
        Ok(input @ Value::Object(_)) => Ok(input),
        Ok(_) => Err(TranslateError::invalid(format!(
            "{where_} must be a JSON object"
        ))),
        Err(e) => Err(TranslateError::invalid(format!(
            "{where_} is not valid JSON: {e}"
        ))),
    }
}

fn tool_result(message: ChatMessage, i: usize) -> Result<ContentBlock, TranslateError> {
    let Some(tool_use_id) = message.tool_call_id else {
        return Err(TranslateError::invalid(format!(
            "messages[{i}].tool_call_id is required for a tool message"
        )));
    };
    let content = match message.content {
        None => ToolResultContent::Text(String::new()),
        Some(Content::Text(text)) => ToolResultContent::Text(text),
        Some(parts) => ToolResultContent::Blocks(content_blocks(Some(parts), i, false)?),
    };
    Ok(ContentBlock::ToolResult {
        tool_use_id: carry::split(&tool_use_id).0.to_string(),
        content,
        is_error: None,
    })
}
