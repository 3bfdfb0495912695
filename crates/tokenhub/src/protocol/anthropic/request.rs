//! OpenAI chat request → Anthropic Messages request (shared/docs/providers.md §3.6).
//!
//! Top-level members are handled in three ways:
//! - translated: `messages`, `max_completion_tokens`/`max_tokens`, `temperature` (clamped
//!   to [0, 1]), `top_p`, `stop`, `stream`, `tools`, `tool_choice`,
//!   `parallel_tool_calls: false`, `reasoning_effort` (see [`thinking_budget`]), `user`;
//! - dropped, as hints Claude has no use for: see [`DROPPED`];
//! - refused with a 400, when dropping would change the answer the client expects: see
//!   [`unsupported_member`] and the content part rules in `messages`.
//!
//! Any other member is passed through unchanged, so Anthropic-only parameters (`top_k`,
//! `thinking`, …) can be sent from an OpenAI client. A member the translation sets itself
//! is never overwritten by a passed-through one, except `thinking`, which when present
//! replaces what `reasoning_effort` would have set.

mod messages;

use crate::protocol::openai::chat::{ChatTool, ChatToolChoice, ResponseFormat, Stop};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::TranslateError;
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
    let native_thinking = extra.contains_key("thinking");
    let budget = match &chat.reasoning_effort {
        Some(effort) if !native_thinking => thinking_budget(effort)?,
        _ => None,
    };
    let (max_tokens, thinking) = match budget {
        None => (limit.unwrap_or(options.default_max_tokens), None),
        Some(budget) => with_thinking(limit, budget, options)?,
    };
    let (temperature, top_p) = if thinking.is_some() {
        // Anthropic refuses sampling changes while thinking; the effort asked for wins.
        (None, None)
    } else {
        (chat.temperature.map(|t| t.clamp(0.0, 1.0)), chat.top_p)
    };
    let tools = translate_tools(chat.tools.unwrap_or_default())?;
    let tool_choice = if tools.is_empty() {
        None
    } else {
        translate_tool_choice(chat.tool_choice, chat.parallel_tool_calls)
    };
    let stream = chat.stream.unwrap_or(false);
    let request = MessagesRequest {
        model: chat.model,
        max_tokens,
        messages,
        system,
        temperature,
        top_p,
        stop_sequences: chat.stop.map(Stop::into_vec).unwrap_or_default(),
        stream: stream.then_some(true),
        tools,
        tool_choice,
        thinking,
        metadata: chat.user.map(|user_id| Metadata { user_id }),
        extra,
    };
    let body = serde_json::to_vec(&request)
        .map_err(|e| TranslateError::invalid(format!("cannot write the Anthropic request: {e}")))?;
    Ok(Translated { body, stream })
}

/// Refuses members whose meaning would be lost. The texts are documented in the README.
fn refuse_unsupported(chat: &ChatRequest) -> Result<(), TranslateError> {
    if chat.n.is_some_and(|n| n > 1) {
        return Err(TranslateError::unsupported("`n` greater than 1"));
    }
    if chat.logprobs == Some(true) {
        return Err(TranslateError::unsupported("`logprobs`"));
    }
    if chat
        .response_format
        .as_ref()
        .is_some_and(|f| f.kind == "json_schema")
    {
        return Err(TranslateError::unsupported(
            "`response_format` of type `json_schema`",
        ));
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

/// `reasoning_effort` → `thinking.budget_tokens`. The effort names are OpenAI's; the
/// budgets are TokenHub's choice (Anthropic's minimum is 1024):
///
/// | effort | budget |
/// |---|---|
/// | `none` | thinking off |
/// | `minimal`, `low` | 1024 |
/// | `medium` | 4096 |
/// | `high` | 16384 |
/// | `xhigh` | 32768 |
pub fn thinking_budget(effort: &str) -> Result<Option<u64>, TranslateError> {
    Ok(match effort {
        "none" => None,
        "minimal" | "low" => Some(1024),
        "medium" => Some(4096),
        "high" => Some(16_384),
        "xhigh" => Some(32_768),
        other => {
            return Err(TranslateError::invalid(format!(
                "`reasoning_effort` must be one of none, minimal, low, medium, high, xhigh (got '{other}')"
            )));
        }
    })
}

/// `max_tokens` and `thinking` for a thinking budget. Anthropic counts thinking inside
/// `max_tokens` and needs `budget_tokens < max_tokens`: without a client limit the answer
/// keeps the default on top of the budget; under a client limit (which, like OpenAI's
/// `max_completion_tokens`, covers reasoning too) the budget shrinks to fit.
fn with_thinking(
    limit: Option<u64>,
    budget: u64,
    options: &RequestOptions,
) -> Result<(u64, Option<Value>), TranslateError> {
    const MIN_BUDGET: u64 = 1024;
    let (max_tokens, budget) = match limit {
        None => (budget + options.default_max_tokens, budget),
        Some(limit) => (limit, budget.min(limit.saturating_sub(1))),
    };
    if budget < MIN_BUDGET {
        return Err(TranslateError::invalid(format!(
            "`reasoning_effort` needs `max_completion_tokens` (or `max_tokens`) above {MIN_BUDGET} for models served by Anthropic"
        )));
    }
    let thinking = serde_json::json!({"type": "enabled", "budget_tokens": budget});
    Ok((max_tokens, Some(thinking)))
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
