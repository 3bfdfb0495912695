//! OpenAI `messages` → Gemini `systemInstruction` + `contents`.
//!
//! - `system` and `developer` messages, wherever they are, become `systemInstruction`
//!   text parts in order.
//! - `assistant` becomes a `model` turn: its text, then one `functionCall` part per tool
//!   call (arguments parsed into the object Gemini wants), with the `thoughtSignature`
//!   the call's id carries (see `gemini::signature`).
//! - `tool` becomes a `functionResponse` part of a user turn. Its `name` is that of the
//!   assistant tool call whose `id` it answers (Gemini has no call ids). Its `response`
//!   is the result when the result text is a JSON object, else `{"content": <text>}`.
//! - Consecutive turns of the same role are merged into one: Gemini wants the answers to
//!   parallel calls in the turn right after the calls, and alternating turns overall.
//! - Images: `data:` URLs become `inlineData`; `http(s)` URLs become `fileData` whose
//!   `mimeType` is read from the URL's extension (PNG, JPEG, WebP, HEIC, HEIF, Gemini's
//!   image types); any other URL is refused rather than sent with a guessed type.
//!   `input_audio` becomes `inlineData` of type `audio/<format>`.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::super::TranslateError;
use super::super::signature::signature_of;
use super::super::wire::{
    Blob, Content, FileData, FunctionCall, FunctionResponse, MODEL, Part, USER,
};

#[derive(Deserialize)]
pub(super) struct ChatMessage {
    role: String,
    #[serde(default)]
    content: Option<ChatContent>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCall>>,
    #[serde(default)]
    tool_call_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ChatContent {
    Text(String),
    Parts(Vec<ChatPart>),
}

/// A content part; read loosely so an unknown `type` gets a clear refusal, not a parse error.
#[derive(Deserialize)]
struct ChatPart {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    image_url: Option<ImageUrl>,
    #[serde(default)]
    input_audio: Option<InputAudio>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ImageUrl {
    Object { url: String },
    Plain(String),
}

#[derive(Deserialize)]
struct InputAudio {
    data: String,
    format: String,
}

#[derive(Deserialize)]
struct ToolCall {
    id: String,
    function: ChatFunctionCall,
}

#[derive(Deserialize)]
struct ChatFunctionCall {
    name: String,
    #[serde(default)]
    arguments: String,
}

/// Which parts a message of this role may hold besides text.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Media {
    Allowed,
    TextOnly,
}

pub(super) fn translate(
    chat: Vec<ChatMessage>,
) -> Result<(Option<Content>, Vec<Content>), TranslateError> {
    let mut system = Vec::new();
    let mut turns: Vec<Content> = Vec::new();
    // Tool call id → function name, from the assistant messages seen so far. Later calls
    // reuse ids such as `call_0`, so the latest one wins, which is the one answered next.
    let mut call_names: HashMap<String, String> = HashMap::new();
    for (i, message) in chat.into_iter().enumerate() {
        let (role, parts) = match message.role.as_str() {
            "system" | "developer" => {
                system.extend(parts_of(message.content, i, Media::TextOnly)?);
                continue;
            }
            "user" => (USER, parts_of(message.content, i, Media::Allowed)?),
            "assistant" => (MODEL, assistant_parts(message, i, &mut call_names)?),
            "tool" => (USER, vec![tool_result(message, i, &call_names)?]),
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
        if parts.is_empty() {
            // Gemini refuses a turn without parts; an empty one carries nothing anyway.
            continue;
        }
        match turns.last_mut() {
            Some(last) if last.role.as_deref() == Some(role) => last.parts.extend(parts),
            _ => turns.push(Content {
                role: Some(role.to_string()),
                parts,
            }),
        }
    }
    let system = (!system.is_empty()).then_some(Content {
        role: None,
        parts: system,
    });
    Ok((system, turns))
}

/// Text (and, for users, media) parts of a message's content. Empty text is skipped.
fn parts_of(
    content: Option<ChatContent>,
    i: usize,
    media: Media,
) -> Result<Vec<Part>, TranslateError> {
    let chat_parts = match content {
        None => return Ok(Vec::new()),
        Some(ChatContent::Text(text)) if text.is_empty() => return Ok(Vec::new()),
        Some(ChatContent::Text(text)) => return Ok(vec![Part::text(text)]),
        Some(ChatContent::Parts(parts)) => parts,
    };
    let mut parts = Vec::with_capacity(chat_parts.len());
    for (j, part) in chat_parts.into_iter().enumerate() {
        match (part.kind.as_str(), media) {
            // An assistant's refusal part is text it said.
            ("text" | "refusal", _) => match part.text {
                Some(text) if !text.is_empty() => parts.push(Part::text(text)),
                _ => {}
            },
            ("image_url", Media::Allowed) => {
                let url = match part.image_url {
                    Some(ImageUrl::Object { url } | ImageUrl::Plain(url)) => url,
                    None => {
                        return Err(TranslateError::invalid(format!(
                            "messages[{i}].content[{j}].image_url is missing"
                        )));
                    }
                };
                parts.push(image_part(url, i, j)?);
            }
            ("input_audio", Media::Allowed) => {
                let Some(audio) = part.input_audio else {
                    return Err(TranslateError::invalid(format!(
                        "messages[{i}].content[{j}].input_audio is missing"
                    )));
                };
                parts.push(Part {
                    inline_data: Some(Blob {
                        mime_type: format!("audio/{}", audio.format),
                        data: audio.data,
                    }),
                    ..Part::default()
                });
            }
            ("file", _) => return Err(TranslateError::unsupported("file input")),
            (other, _) => {
                return Err(TranslateError::unsupported(&format!(
                    "content part type '{other}' in messages[{i}]"
                )));
            }
        }
    }
    Ok(parts)
}

/// `data:<mime>;base64,<data>` → `inlineData`; `http(s)://…/x.png` → `fileData`.
fn image_part(url: String, i: usize, j: usize) -> Result<Part, TranslateError> {
    let not_a_url = || {
        TranslateError::invalid(format!(
            "messages[{i}].content[{j}].image_url must be a base64 data URL (data:<type>;base64,…) or an http(s) URL"
        ))
    };
    if let Some(rest) = url.strip_prefix("data:") {
        let (mime_type, data) = rest
            .split_once(";base64,")
            .filter(|(mime_type, _)| !mime_type.is_empty())
            .ok_or_else(not_a_url)?;
        return Ok(Part {
            inline_data: Some(Blob {
                mime_type: mime_type.to_string(),
                data: data.to_string(),
            }),
            ..Part::default()
        });
    }
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(not_a_url());
    }
    let Some(mime_type) = image_type_of(&url) else {
        return Err(TranslateError::invalid(format!(
            "messages[{i}].content[{j}].image_url: the type of an image URL is read from its extension (.png, .jpg, .jpeg, .webp, .heic, .heif) for models served by Gemini; send other images as a base64 data URL"
        )));
    };
    Ok(Part {
        file_data: Some(FileData {
            mime_type: mime_type.to_string(),
            file_uri: url,
        }),
        ..Part::default()
    })
}

/// The image type named by the extension of a URL's path (query and fragment ignored).
fn image_type_of(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let (_, extension) = path.rsplit_once('.')?;
    Some(match extension.to_ascii_lowercase().as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        _ => return None,
    })
}

fn assistant_parts(
    message: ChatMessage,
    i: usize,
    call_names: &mut HashMap<String, String>,
) -> Result<Vec<Part>, TranslateError> {
    let mut parts = parts_of(message.content, i, Media::TextOnly)?;
    for (k, call) in message.tool_calls.into_iter().flatten().enumerate() {
        let args = call_args(&call.function.arguments, i, k)?;
        // A signed call must go back with its signature, which its id carries.
        let thought_signature = signature_of(&call.id);
        call_names.insert(call.id, call.function.name.clone());
        parts.push(Part {
            function_call: Some(FunctionCall {
                name: call.function.name,
                args,
            }),
            thought_signature,
            ..Part::default()
        });
    }
    Ok(parts)
}

/// The arguments JSON string as the object Gemini wants. Empty means no arguments.
fn call_args(arguments: &str, i: usize, k: usize) -> Result<Value, TranslateError> {
    if arguments.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    let where_ = format!("messages[{i}].tool_calls[{k}].function.arguments");
    match serde_json::from_str::<Value>(arguments) {
        Ok(args @ Value::Object(_)) => Ok(args),
        Ok(_) => Err(TranslateError::invalid(format!(
            "{where_} must be a JSON object"
        ))),
        Err(e) => Err(TranslateError::invalid(format!(
            "{where_} is not valid JSON: {e}"
        ))),
    }
}

fn tool_result(
    message: ChatMessage,
    i: usize,
    call_names: &HashMap<String, String>,
) -> Result<Part, TranslateError> {
    let Some(id) = message.tool_call_id else {
        return Err(TranslateError::invalid(format!(
            "messages[{i}].tool_call_id is required for a tool message"
        )));
    };
    let Some(name) = call_names.get(&id) else {
        return Err(TranslateError::invalid(format!(
            "messages[{i}].tool_call_id '{id}' does not answer a tool call of an earlier assistant message"
        )));
    };
    let text: String = match message.content {
        None => String::new(),
        Some(ChatContent::Text(text)) => text,
        Some(ChatContent::Parts(parts)) => parts.into_iter().filter_map(|p| p.text).collect(),
    };
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(object @ Value::Object(_)) => object,
        _ => json!({ "content": text }),
    };
    Ok(Part {
        function_response: Some(FunctionResponse {
            name: name.clone(),
            response,
        }),
        ..Part::default()
    })
}
