//! Anthropic Messages request → OpenAI chat request (shared/docs/providers.md §3.9).
//!
//! | Messages member | OpenAI member |
//! |---|---|
//! | `system` (string or text blocks) | a leading `system` message (blocks joined by a blank line) |
//! | `messages` | see `messages` |
//! | `max_tokens`, `temperature`, `top_p` | the same |
//! | `top_k` | passed as is (vLLM, DeepSeek and others read it; OpenAI ignores it) |
//! | `stop_sequences` | `stop` |
//! | `tools[].input_schema` | `tools[].function.parameters` |
//! | `tool_choice` auto / any / tool / none | `"auto"` / `"required"` / a function object / `"none"`; `disable_parallel_tool_use` → `parallel_tool_calls: false` |
//! | `metadata.user_id` | `user` |
//! | `stream: true` | `stream: true` + `stream_options.include_usage: true` (the usage goes into `message_delta`) |
//!
//! `thinking` and the members in [`DROPPED`] have no portable OpenAI equivalent and are
//! dropped (a reasoning upstream reasons anyway; its `reasoning_content` comes back as
//! thinking blocks). Server tools (`web_search_…`, `bash_…`, any tool with a `type`
//! other than `custom`) and content blocks OpenAI cannot carry (`document`, …) are
//! refused with a 400. Any other member passes through unchanged (e.g. the mock
//! upstream's `mock` knobs).

mod messages;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::super::TranslateError;
use super::super::wire::{Role, ToolChoice};

/// Anthropic-only members with no meaning for an OpenAI upstream; `service_tier` in
/// particular takes values OpenAI rejects.
pub const DROPPED: &[&str] = &[
    "thinking",
    "service_tier",
    "container",
    "mcp_servers",
    "context_management",
];

/// The members of a Messages request the translation reads; the rest land in `extra`.
#[derive(Debug, Deserialize)]
pub struct InboundRequest {
    pub model: String,
    pub max_tokens: u64,
    messages: Vec<InboundMessage>,
    #[serde(default)]
    system: Option<Content>,
    #[serde(default)]
    temperature: Option<Value>,
    #[serde(default)]
    top_p: Option<Value>,
    #[serde(default)]
    stop_sequences: Option<Vec<String>>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    tools: Option<Vec<Map<String, Value>>>,
    #[serde(default)]
    tool_choice: Option<ToolChoice>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
struct InboundMessage {
    role: Role,
    content: Content,
}

/// Anthropic accepts a bare string wherever a list of blocks goes.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Blocks(Vec<Value>),
}

impl InboundRequest {
    pub fn parse(body: &[u8]) -> Result<InboundRequest, TranslateError> {
        serde_json::from_slice(body).map_err(|e| {
            TranslateError::invalid(format!(
                "The request body is not a valid Messages request: {e}"
            ))
        })
    }

    pub fn is_stream(&self) -> bool {
        self.stream == Some(true)
    }
}

/// Translates a parsed Messages request into an OpenAI chat request body.
pub fn request_to_openai(request: InboundRequest) -> Result<Value, TranslateError> {
    let mut out = Map::new();
    out.insert("model".into(), Value::String(request.model));
    let mut chat = Vec::new();
    if let Some(system) = request.system
        && let Some(content) = messages::system_content(system)?
    {
        chat.push(json!({"role": "system", "content": content}));
    }
    for message in request.messages {
        match message.role {
            Role::User => messages::user(message.content, &mut chat)?,
            Role::Assistant => messages::assistant(message.content, &mut chat)?,
        }
    }
    out.insert("messages".into(), Value::Array(chat));
    out.insert("max_tokens".into(), Value::from(request.max_tokens));
    for (name, value) in [
        ("temperature", request.temperature),
        ("top_p", request.top_p),
    ] {
        if let Some(value) = value.filter(|v| !v.is_null()) {
            out.insert(name.into(), value);
        }
    }
    if let Some(stop) = request.stop_sequences.filter(|s| !s.is_empty()) {
        out.insert("stop".into(), json!(stop));
    }
    if request.stream == Some(true) {
        out.insert("stream".into(), Value::Bool(true));
        // The usage chunk carries the real counts for `message_delta`.
        out.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if let Some(tools) = request.tools.filter(|t| !t.is_empty()) {
        let tools = tools.into_iter().map(tool).collect::<Result<Vec<_>, _>>()?;
        out.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = request.tool_choice {
        let (choice, no_parallel) = tool_choice(choice);
        out.insert("tool_choice".into(), choice);
        if no_parallel {
            out.insert("parallel_tool_calls".into(), Value::Bool(false));
        }
    }
    if let Some(user) = request
        .metadata
        .as_ref()
        .and_then(|m| m.get("user_id"))
        .and_then(Value::as_str)
    {
        out.insert("user".into(), Value::String(user.to_string()));
    }
    for (name, value) in request.extra {
        if !DROPPED.contains(&name.as_str()) && !out.contains_key(&name) {
            out.insert(name, value);
        }
    }
    Ok(Value::Object(out))
}

fn tool(mut tool: Map<String, Value>) -> Result<Value, TranslateError> {
    let kind = tool.get("type").and_then(Value::as_str).unwrap_or("custom");
    let name = tool.get("name").and_then(Value::as_str).unwrap_or_default();
    if kind != "custom" || !tool.contains_key("input_schema") {
        return Err(TranslateError::invalid(format!(
            "tools: server tool `{name}` (type `{kind}`) is not supported on this gateway; only client tools with an input_schema are"
        )));
    }
    let mut function = Map::new();
    function.insert("name".into(), Value::String(name.to_string()));
    if let Some(description) = tool.remove("description") {
        function.insert("description".into(), description);
    }
    if let Some(schema) = tool.remove("input_schema") {
        function.insert("parameters".into(), schema);
    }
    let mut tool_out = json!({"type": "function", "function": function});
    if let Some(cache_control) = tool.remove("cache_control") {
        tool_out["cache_control"] = cache_control;
    }
    Ok(tool_out)
}

/// The OpenAI `tool_choice`, and whether parallel calls must be switched off.
fn tool_choice(choice: ToolChoice) -> (Value, bool) {
    match choice {
        ToolChoice::Auto {
            disable_parallel_tool_use,
        } => (json!("auto"), disable_parallel_tool_use == Some(true)),
        ToolChoice::Any {
            disable_parallel_tool_use,
        } => (json!("required"), disable_parallel_tool_use == Some(true)),
        ToolChoice::Tool {
            name,
            disable_parallel_tool_use,
        } => (
            json!({"type": "function", "function": {"name": name}}),
            disable_parallel_tool_use == Some(true),
        ),
        ToolChoice::None => (json!("none"), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translate(body: Value) -> Result<Value, TranslateError> {
        request_to_openai(InboundRequest::parse(body.to_string().as_bytes())?)
    }

    #[test]
    fn minimal_request() {
        let out = translate(json!({"model": "m", "max_tokens": 5,
            "messages": [{"role": "user", "content": "hi"}]}))
        .unwrap();
        assert_eq!(
            out,
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5})
        );
    }

    #[test]
    fn refuses_server_tools_and_missing_max_tokens() {
        let error = translate(json!({"model": "m", "max_tokens": 5, "messages": [],
            "tools": [{"type": "web_search_20250305", "name": "web_search"}]}))
        .unwrap_err();
        assert!(error.message.contains("web_search"), "{error}");
        let error = translate(json!({"model": "m", "messages": []})).unwrap_err();
        assert!(error.message.contains("max_tokens"), "{error}");
    }
}
