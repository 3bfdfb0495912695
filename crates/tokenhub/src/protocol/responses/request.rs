//! A Responses request → an OpenAI chat request.
//!
//! | Responses | chat |
//! |---|---|
//! | `instructions` (text, or a list of items) | leading `system` message(s) (never carried to the next turn, as OpenAI) |
//! | `input` string | one `user` message |
//! | `message` items (`input_text`, `input_image`, `input_file`, `output_text`, `refusal`) | messages with `text` / `image_url` / `file` parts; `developer` → `system` |
//! | `function_call` items | the `tool_calls` of an assistant message (consecutive calls merge) |
//! | `function_call_output` items | `tool` messages |
//! | `reasoning` items | dropped (a chat upstream has no place for them) |
//! | function `tools`, `tool_choice` | chat `tools` / `tool_choice` |
//! | `text.format` | `response_format` (`json_schema` / `json_object`; `text` is the default) |
//! | `reasoning.effort` | `reasoning_effort` |
//! | `max_output_tokens` | `max_completion_tokens` |
//! | `stream: true` | the same, with `stream_options.include_usage` (the usage `response.completed` reports) |
//! | any other member (`temperature`, `top_p`, `parallel_tool_calls`, `user`, `stream`, …) | the same |
//!
//! Tools that only OpenAI runs (web search, file search, computer use, …) and items that
//! point at OpenAI-side state (`item_reference`, file ids) are refused: a chat upstream
//! cannot serve them.

use serde_json::{Map, Value, json};

use super::TranslateError;

/// A Responses request as a chat request.
#[derive(Clone, Debug, PartialEq)]
pub struct Translation {
    pub chat: Value,
    /// This turn's input as chat messages (without `instructions`): stored with the answer
    /// so that a later `previous_response_id` replays the whole conversation.
    pub turn: Vec<Value>,
}

/// Responses members that are translated above, or that mean nothing to a chat upstream
/// (the gateway's own state, OpenAI-side features). Every other member passes through
/// unchanged: `temperature`, `top_p`, `parallel_tool_calls`, `user`, `stream`,
/// `service_tier`, `prompt_cache_key`, vendor extensions (and the mock's `mock` knobs).
const NOT_PASSED: [&str; 18] = [
    "top_logprobs",
    "model",
    "input",
    "instructions",
    "max_output_tokens",
    "reasoning",
    "text",
    "tools",
    "tool_choice",
    "store",
    "previous_response_id",
    "metadata",
    "include",
    "truncation",
    "background",
    "stream_options",
    "max_tool_calls",
    "conversation",
];

/// Translates `request` continuing `history` (the chat messages of the conversation so
/// far, empty for a first turn).
pub fn request_to_chat(request: &Value, history: &[Value]) -> Result<Translation, TranslateError> {
    let object = request
        .as_object()
        .ok_or_else(|| TranslateError::new("the request body must be a JSON object", "body"))?;
    let model = object
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| TranslateError::new("you must provide a model parameter", "model"))?;
    if object.get("background").and_then(Value::as_bool) == Some(true) {
        return Err(TranslateError::new(
            "background responses are not supported by this gateway",
            "background",
        ));
    }
    for (name, what) in [
        ("conversation", "conversations"),
        ("prompt", "prompt templates"),
    ] {
        if object.get(name).is_some_and(|v| !v.is_null()) {
            return Err(TranslateError::new(
                format!(
                    "{what} are not supported by this gateway: use previous_response_id or send the input"
                ),
                name,
            ));
        }
    }
    let turn = input_messages(object.get("input"))?;
    let mut messages = Vec::with_capacity(history.len() + turn.len() + 1);
    match object.get("instructions") {
        Some(Value::String(text)) => messages.push(json!({"role": "system", "content": text})),
        // A list of input items (OpenAI accepts one): their messages, in place of the text.
        Some(items @ Value::Array(_)) => messages.extend(input_messages(Some(items))?),
        _ => {}
    }
    messages.extend(history.iter().cloned());
    messages.extend(turn.iter().cloned());

    let mut chat = Map::new();
    chat.insert("model".into(), json!(model));
    chat.insert("messages".into(), Value::Array(messages));
    for (name, value) in object {
        if !NOT_PASSED.contains(&name.as_str()) && !value.is_null() {
            chat.insert(name.clone(), value.clone());
        }
    }
    if object.get("stream").and_then(Value::as_bool) == Some(true) {
        // `response.completed` carries the usage, which a chat stream sends only when asked.
        chat.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if let Some(max) = object.get("max_output_tokens").filter(|v| !v.is_null()) {
        chat.insert("max_completion_tokens".into(), max.clone());
    }
    if let Some(effort) = request
        .pointer("/reasoning/effort")
        .filter(|v| !v.is_null())
    {
        chat.insert("reasoning_effort".into(), effort.clone());
    }
    if let Some(format) = response_format(request.pointer("/text/format"))? {
        chat.insert("response_format".into(), format);
    }
    let tools = tools(object.get("tools"))?;
    if !tools.is_empty() {
        chat.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = tool_choice(object.get("tool_choice"))? {
        chat.insert("tool_choice".into(), choice);
    }
    Ok(Translation {
        chat: Value::Object(chat),
        turn,
    })
}

/// `input`: a string (one user message) or a list of items.
pub(super) fn input_messages(input: Option<&Value>) -> Result<Vec<Value>, TranslateError> {
    match input {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(text)) => Ok(vec![json!({"role": "user", "content": text})]),
        Some(Value::Array(items)) => {
            let mut messages: Vec<Value> = Vec::with_capacity(items.len());
            for item in items {
                push_item(&mut messages, item)?;
            }
            Ok(messages)
        }
        Some(_) => Err(TranslateError::new(
            "'input' must be a string or an array of items",
            "input",
        )),
    }
}

fn push_item(messages: &mut Vec<Value>, item: &Value) -> Result<(), TranslateError> {
    let kind = item.get("type").and_then(Value::as_str);
    match kind {
        None | Some("message") => messages.push(message(item)?),
        Some("function_call") => {
            let call = json!({
                "id": required_str(item, "call_id")?,
                "type": "function",
                "function": {
                    "name": required_str(item, "name")?,
                    "arguments": item.get("arguments").and_then(Value::as_str).unwrap_or("{}"),
                },
            });
            // Calls made in one turn belong to one assistant message (after its text).
            match messages.last_mut() {
                Some(last) if last["role"] == "assistant" => {
                    let calls = last
                        .as_object_mut()
                        .expect("messages are objects")
                        .entry("tool_calls")
                        .or_insert_with(|| json!([]));
                    calls
                        .as_array_mut()
                        .expect("tool_calls is a list")
                        .push(call);
                }
                _ => messages
                    .push(json!({"role": "assistant", "content": null, "tool_calls": [call]})),
            }
        }
        Some("function_call_output") => messages.push(json!({
            "role": "tool",
            "tool_call_id": required_str(item, "call_id")?,
            "content": output_text(item.get("output"))?,
        })),
        Some("reasoning") => {}
        Some("item_reference") => {
            return Err(TranslateError::new(
                "item references are not supported: send the item itself, or use previous_response_id",
                "input",
            ));
        }
        Some(other) => {
            return Err(TranslateError::new(
                format!("input items of type '{other}' are not supported by this gateway"),
                "input",
            ));
        }
    }
    Ok(())
}

fn message(item: &Value) -> Result<Value, TranslateError> {
    let role = match item.get("role").and_then(Value::as_str) {
        Some("developer" | "system") => "system",
        Some(role @ ("user" | "assistant")) => role,
        _ => {
            return Err(TranslateError::new(
                "a message item needs a role: user, assistant, system or developer",
                "input",
            ));
        }
    };
    let content = match item.get("content") {
        Some(Value::String(text)) => json!(text),
        Some(Value::Array(parts)) => content_parts(role, parts)?,
        _ => {
            return Err(TranslateError::new(
                "a message item's content must be a string or a list of parts",
                "input",
            ));
        }
    };
    Ok(json!({"role": role, "content": content}))
}

/// A message's parts: text alone becomes one string (every chat upstream takes that;
/// not every one takes part lists for system or assistant messages).
fn content_parts(role: &str, parts: &[Value]) -> Result<Value, TranslateError> {
    let mut chat_parts = Vec::with_capacity(parts.len());
    for part in parts {
        chat_parts.push(content_part(part)?);
    }
    let all_text = chat_parts.iter().all(|p| p["type"] == "text");
    if all_text && (role != "user" || chat_parts.len() == 1) {
        let text: Vec<&str> = chat_parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect();
        return Ok(json!(text.concat()));
    }
    Ok(Value::Array(chat_parts))
}

fn content_part(part: &Value) -> Result<Value, TranslateError> {
    match part.get("type").and_then(Value::as_str) {
        Some("input_text" | "output_text" | "text") => {
            Ok(json!({"type": "text", "text": required_str(part, "text")?}))
        }
        Some("refusal") => Ok(json!({"type": "text", "text": required_str(part, "refusal")?})),
        Some("input_image") => {
            let Some(url) = part.get("image_url").and_then(Value::as_str) else {
                return Err(TranslateError::new(
                    "input_image needs an image_url (a URL or a data: URL); file ids are not supported",
                    "input",
                ));
            };
            let mut image = json!({"url": url});
            if let Some(detail) = part.get("detail").filter(|d| !d.is_null()) {
                image["detail"] = detail.clone();
            }
            Ok(json!({"type": "image_url", "image_url": image}))
        }
        Some("input_file") => {
            let Some(data) = part.get("file_data").and_then(Value::as_str) else {
                return Err(TranslateError::new(
                    "input_file needs file_data; file ids and URLs are not supported",
                    "input",
                ));
            };
            let mut file = json!({"file_data": data});
            if let Some(name) = part.get("filename").and_then(Value::as_str) {
                file["filename"] = json!(name);
            }
            Ok(json!({"type": "file", "file": file}))
        }
        other => Err(TranslateError::new(
            format!(
                "content parts of type '{}' are not supported",
                other.unwrap_or("(none)")
            ),
            "input",
        )),
    }
}

/// A function call's output: a string, or a list of parts whose text is joined.
fn output_text(output: Option<&Value>) -> Result<String, TranslateError> {
    match output {
        Some(Value::String(text)) => Ok(text.clone()),
        Some(Value::Array(parts)) => Ok(parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect()),
        _ => Err(TranslateError::new(
            "function_call_output needs an output string",
            "input",
        )),
    }
}

/// Tools OpenAI runs itself: only its own Responses API can serve them.
pub fn is_hosted_tool(kind: &str) -> bool {
    kind != "function"
}

fn tools(tools: Option<&Value>) -> Result<Vec<Value>, TranslateError> {
    let Some(tools) = tools.filter(|t| !t.is_null()) else {
        return Ok(Vec::new());
    };
    let tools = tools
        .as_array()
        .ok_or_else(|| TranslateError::new("'tools' must be an array", "tools"))?;
    tools.iter().map(tool).collect()
}

fn tool(tool: &Value) -> Result<Value, TranslateError> {
    let kind = tool.get("type").and_then(Value::as_str).unwrap_or_default();
    if is_hosted_tool(kind) {
        return Err(hosted_tool_refusal(kind));
    }
    let mut function = Map::new();
    function.insert("name".into(), json!(required_str(tool, "name")?));
    for name in ["description", "parameters", "strict"] {
        if let Some(value) = tool.get(name).filter(|v| !v.is_null()) {
            function.insert(name.into(), value.clone());
        }
    }
    Ok(json!({"type": "function", "function": function}))
}

/// The 400 for a tool that only OpenAI's own servers run.
pub fn hosted_tool_refusal(kind: &str) -> TranslateError {
    TranslateError::new(
        format!(
            "The '{kind}' tool is run by OpenAI and is only available on channels that serve \
             the Responses API natively; this model is served through chat completions, \
             which support function tools only."
        ),
        "tools",
    )
}

fn tool_choice(choice: Option<&Value>) -> Result<Option<Value>, TranslateError> {
    match choice {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(mode)) => match mode.as_str() {
            "auto" | "none" | "required" => Ok(Some(json!(mode))),
            _ => Err(TranslateError::new(
                format!("tool_choice '{mode}' is not one of auto, none, required"),
                "tool_choice",
            )),
        },
        Some(choice) => match choice.get("type").and_then(Value::as_str) {
            Some("function") => Ok(Some(json!({
                "type": "function",
                "function": {"name": required_str(choice, "name")?},
            }))),
            Some("allowed_tools") => Ok(choice.get("mode").cloned()),
            kind => Err(hosted_tool_refusal(kind.unwrap_or("(unnamed)"))),
        },
    }
}

fn response_format(format: Option<&Value>) -> Result<Option<Value>, TranslateError> {
    let Some(format) = format.filter(|f| !f.is_null()) else {
        return Ok(None);
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "json_object"}))),
        Some("json_schema") => {
            let mut schema = Map::new();
            schema.insert("name".into(), json!(required_str(format, "name")?));
            for name in ["description", "schema", "strict"] {
                if let Some(value) = format.get(name).filter(|v| !v.is_null()) {
                    schema.insert(name.into(), value.clone());
                }
            }
            Ok(Some(json!({"type": "json_schema", "json_schema": schema})))
        }
        _ => Err(TranslateError::new(
            "text.format.type must be text, json_object or json_schema",
            "text.format",
        )),
    }
}

fn required_str<'a>(value: &'a Value, name: &str) -> Result<&'a str, TranslateError> {
    value.get(name).and_then(Value::as_str).ok_or_else(|| {
        TranslateError::new(format!("missing required string member '{name}'"), "input")
    })
}
