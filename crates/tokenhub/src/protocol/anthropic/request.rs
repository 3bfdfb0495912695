//! OpenAI chat request → Anthropic Messages request (shared/docs/providers.md §3.6).
//!
//! Top-level members are handled in three ways:
//! - translated: `messages`, `max_completion_tokens`/`max_tokens`, `temperature` (clamped
//!   to [0, 1]) and `top_p` as the model family takes them (`reasoning::sampling`),
//!   `stop`, `stream`, `tools`, `tool_choice`, `parallel_tool_calls: false`,
//!   `reasoning_effort` (a thinking budget, or adaptive thinking with
//!   `output_config.effort`, per family: `reasoning`; none when a tool is forced), `user`;
//! - dropped, as hints Claude has no use for: see [`DROPPED`];
//! - refused with a 400, when dropping would change the answer the client expects: see
//!   [`unsupported_member`] and the content part rules in `messages`.
//!
//! Any other member is passed through unchanged, so Anthropic-only parameters (`top_k`,
//! `thinking`, …) can be sent from an OpenAI client. A member the translation sets itself
//! is never overwritten by a passed-through one, except `thinking`, which when present
//! replaces what `reasoning_effort` would have set (and is dropped when a tool is forced),
//! and `output_config`, whose own `effort` wins. The model family's rules are in
//! `model_rules`; all of them are listed in `docs/providers/anthropic.md`.

mod messages;
mod reasoning;

pub use reasoning::thinking_budget;

use crate::protocol::openai::chat::{ChatTool, ChatToolChoice, ResponseFormat, Stop};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::TranslateError;
use super::model_rules::rules_for;
use super::structured::structured;
use super::wire::{MessagesRequest, Metadata, Tool, ToolChoice};

/// Output budget when the client sets none: Anthropic requires `max_tokens`, OpenAI does not.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// Members an OpenAI client may send that mean nothing to Claude and change nothing the
/// client can check in the answer (sampling hints, storage and routing options).
pub const DROPPED: &[&str] = &[
    "stream_options",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "logit_bias",
    "top_logprobs",
    "store",
    "metadata",
    "service_tier",
    "prompt_cache_key",
    "safety_identifier",
    "prediction",
    "verbosity",
];

/// Members the translation writes itself; a passed-through copy would duplicate them.
const WRITTEN: &[&str] = &[
    "system",
    "stop_sequences",
    "tools",
    "tool_choice",
    "metadata",
    "messages",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestOptions {
    /// `max_tokens` when the request sets no limit.
    pub default_max_tokens: u64,
}

impl Default for RequestOptions {
    fn default() -> Self {
        RequestOptions {
            default_max_tokens: DEFAULT_MAX_TOKENS,
        }
    }
}

/// A translated request: the body to send, and whether the answer will be a stream.
#[derive(Clone, Debug, PartialEq)]
pub struct Translated {
    pub body: Vec<u8>,
    pub stream: bool,
    /// The forced tool whose call is the answer (`structured`), to be given back as content.
    pub answer_tool: Option<String>,
}

/// The OpenAI members the translation reads; everything else lands in `extra`.
#[derive(Deserialize)]
struct ChatRequest {
    model: String,
    messages: Vec<messages::ChatMessage>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    max_completion_tokens: Option<u64>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    stop: Option<Stop>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    n: Option<u64>,
    #[serde(default)]
    logprobs: Option<bool>,
    #[serde(default)]
    tools: Option<Vec<ChatTool>>,
    #[serde(default)]
    tool_choice: Option<ChatToolChoice>,
    #[serde(default)]
    parallel_tool_calls: Option<bool>,
    #[serde(default)]
    reasoning_effort: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    response_format: Option<ResponseFormat>,
    #[serde(default)]
    modalities: Option<Vec<String>>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// Translates an OpenAI chat body (whose `model` the relay has already mapped to the
/// channel's upstream name) into an Anthropic Messages body.
pub fn request_from_openai(
    openai_body: &[u8],
    options: &RequestOptions,
) -> Result<Translated, TranslateError> {
    let chat: ChatRequest = serde_json::from_slice(openai_body).map_err(|e| {
        TranslateError::invalid(format!(
            "The request could not be translated for Anthropic: {e}"
        ))
    })?;
    refuse_unsupported(&chat)?;
    let (system, messages) = messages::translate(chat.messages)?;
    let limit = chat.max_completion_tokens.or(chat.max_tokens);
    let mut extra = chat.extra;
    for name in DROPPED.iter().chain(WRITTEN) {
        extra.remove(*name);
    }
    let mut tools = translate_tools(chat.tools.unwrap_or_default())?;
    let mut tool_choice = if tools.is_empty() {
        None
    } else {
        translate_tool_choice(chat.tool_choice, chat.parallel_tool_calls)
    };
    let format = structured(
        chat.response_format.as_ref(),
        rules_for(&chat.model),
        !tools.is_empty(),
    )?;
    let answer_tool = format.and_then(|f| f.apply(&mut tools, &mut tool_choice, &mut extra));
    let forces_tool = matches!(
        tool_choice,
        Some(ToolChoice::Any { .. } | ToolChoice::Tool { .. })
    );
    let effort = chat.reasoning_effort.as_deref();
    let (reasoning, temperature, top_p) = reasoning_and_sampling(
        effort,
        (chat.temperature, chat.top_p),
        forces_tool,
        &chat.model,
        limit,
        &mut extra,
        options,
    )?;
    let stream = chat.stream.unwrap_or(false);
    let request = MessagesRequest {
        model: chat.model,
        max_tokens: reasoning.max_tokens,
        messages,
        system,
        temperature,
        top_p,
        stop_sequences: chat.stop.map(Stop::into_vec).unwrap_or_default(),
        stream: stream.then_some(true),
        tools,
        tool_choice,
        thinking: reasoning.thinking,
        metadata: chat.user.map(|user_id| Metadata { user_id }),
        extra,
    };
    let body = serde_json::to_vec(&request)
        .map_err(|e| TranslateError::invalid(format!("cannot write the Anthropic request: {e}")))?;
    Ok(Translated {
        body,
        stream,
        answer_tool,
    })
}

/// Refuses members whose meaning would be lost. The texts are documented in docs/providers/anthropic.md.
fn refuse_unsupported(chat: &ChatRequest) -> Result<(), TranslateError> {
    if chat.n.is_some_and(|n| n > 1) {
        return Err(TranslateError::unsupported("`n` greater than 1"));
    }
    if chat.logprobs == Some(true) {
        return Err(TranslateError::unsupported("`logprobs`"));
    }
    if chat
        .modalities
        .iter()
        .flatten()
        .any(|modality| modality != "text")
    {
        return Err(TranslateError::unsupported(
            "output `modalities` other than text",
        ));
    }
    if let Some(feature) = chat.extra.keys().find_map(|name| unsupported_member(name)) {
        return Err(TranslateError::unsupported(feature));
    }
    Ok(())
}

/// OpenAI members with no Anthropic equivalent that the client relies on.
pub fn unsupported_member(name: &str) -> Option<&'static str> {
    Some(match name {
        "audio" => "audio output (`audio`)",
        "functions" | "function_call" => "the legacy `functions` API (use `tools`)",
        "web_search_options" => "`web_search_options`",
        _ => return None,
    })
}

/// Thinking (from `reasoning_effort`, or a passed-through `thinking`) and the sampling
/// parameters that go with it, for the model's family; edits the passed-through members.
fn reasoning_and_sampling(
    effort: Option<&str>,
    (temperature, top_p): (Option<f64>, Option<f64>),
    forces_tool: bool,
    model: &str,
    limit: Option<u64>,
    extra: &mut Map<String, Value>,
    options: &RequestOptions,
) -> Result<(reasoning::Reasoning, Option<f64>, Option<f64>), TranslateError> {
    let rules = rules_for(model);
    // Anthropic refuses thinking when `tool_choice` forces a tool (extended-thinking,
    // "Tool use with thinking", checked 2026-12-05). The forced call is the contract the
    // client relies on, the effort only a hint: such a request goes without thinking.
    if forces_tool {
        extra.remove("thinking");
    }
    let native = extra.get("thinking");
    let native_on = native.is_some_and(|t| t.get("type") != Some(&Value::from("disabled")));
    let effort = effort.filter(|_| native.is_none() && !forces_tool);
    let reasoning = reasoning::reasoning(effort, limit, rules, options)?;
    let thinking_on = native_on || reasoning.thinking.is_some();
    let (temperature, top_p) = reasoning::sampling(rules, thinking_on, temperature, top_p, extra);
    if let Some(effort) = reasoning.effort {
        set_effort(extra, effort);
    }
    Ok((reasoning, temperature, top_p))
}

/// `output_config.effort`, kept when the client set one itself (a passed-through
/// `output_config` keeps its other members, e.g. `format`).
fn set_effort(extra: &mut Map<String, Value>, effort: &str) {
    let config = extra
        .entry("output_config")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(config) = config {
        config
            .entry("effort")
            .or_insert_with(|| Value::from(effort));
    }
}

fn translate_tools(tools: Vec<ChatTool>) -> Result<Vec<Tool>, TranslateError> {
    tools
        .into_iter()
        .map(|tool| {
            let function = match (tool.kind.as_str(), tool.function) {
                ("function", Some(function)) => function,
                (kind, _) => {
                    return Err(TranslateError::unsupported(&format!(
                        "a tool of type '{kind}' (only `function` tools are)"
                    )));
                }
            };
            Ok(Tool {
                name: function.name,
                description: function.description,
                // A function without parameters takes none; Anthropic requires a schema.
                input_schema: function
                    .parameters
                    .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
                cache_control: tool.cache_control,
            })
        })
        .collect()
}

fn translate_tool_choice(
    choice: Option<ChatToolChoice>,
    parallel: Option<bool>,
) -> Option<ToolChoice> {
    let disable_parallel_tool_use = (parallel == Some(false)).then_some(true);
    match choice {
        None if disable_parallel_tool_use.is_some() => Some(ToolChoice::Auto {
            disable_parallel_tool_use,
        }),
        None => None,
        Some(ChatToolChoice::Mode(mode)) => match mode.as_str() {
            "none" => Some(ToolChoice::None),
            "required" => Some(ToolChoice::Any {
                disable_parallel_tool_use,
            }),
            // "auto", and modes newer than this code: Claude's default is the safe reading.
            _ => Some(ToolChoice::Auto {
                disable_parallel_tool_use,
            }),
        },
        Some(ChatToolChoice::Function { function }) => Some(ToolChoice::Tool {
            name: function.name,
            disable_parallel_tool_use,
        }),
    }
}
