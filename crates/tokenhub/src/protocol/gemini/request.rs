//! OpenAI chat request → Gemini `GenerateContentRequest` (shared/docs/providers.md §4.1).
//!
//! Top-level members are handled in four ways:
//! - translated: `messages` (see `contents`), `max_completion_tokens`/`max_tokens`,
//!   `temperature`, `top_p`, `stop`, `presence_penalty`, `frequency_penalty` (dropped
//!   for Gemini 2.5 and later, which refuse them), `seed`, `response_format` and
//!   `reasoning_effort` (see `generation` and `family`), `tools` (schemas as
//!   `parametersJsonSchema`), `tool_choice`,
//!   `stream` (which picks the endpoint; it is not a body member), `model` (likewise, it
//!   is in the URL);
//! - dropped, as hints Gemini has no member for: see [`DROPPED`];
//! - refused with a 400, when dropping would change the answer the client expects: see
//!   [`refuse_unsupported`] and the content part rules in `contents`;
//! - anything else is passed through unchanged, so Gemini-only members (`safetySettings`,
//!   `cachedContent`, …) can be sent from an OpenAI client. A client `generationConfig` is
//!   merged under the translated settings (so `thinkingConfig` or `topK` work).
//!
//! Passing unknown members through is also what carries the mock upstream's `mock`
//! knobs in tests; Gemini itself answers 400 to a member it does not know.

mod contents;
mod family;
mod generation;

use crate::protocol::openai::chat::{ChatTool, ChatToolChoice, ResponseFormat, Stop};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::TranslateError;
use super::wire::{
    FunctionCallingConfig, FunctionDeclaration, GenerateContentRequest, GenerationConfig, Tool,
    ToolConfig,
};

/// Members an OpenAI client may send that have no Gemini equivalent and change nothing
/// the client can check in the answer (storage, routing and sampling hints).
pub const DROPPED: &[&str] = &[
    "stream_options",
    "logit_bias",
    "top_logprobs",
    "store",
    "metadata",
    "service_tier",
    "prompt_cache_key",
    "safety_identifier",
    "prediction",
    "verbosity",
    "user",
    "parallel_tool_calls",
];

/// Members the translation writes itself, in both of the spellings Gemini accepts; a
/// passed-through copy would duplicate them.
const WRITTEN: &[&str] = &[
    "contents",
    "systemInstruction",
    "system_instruction",
    "tools",
    "toolConfig",
    "tool_config",
    "generationConfig",
    "generation_config",
];

/// A translated request: the body, the model (it goes in the URL) and whether to stream.
#[derive(Clone, Debug, PartialEq)]
pub struct Translated {
    pub body: Vec<u8>,
    pub model: String,
    pub stream: bool,
}

/// The OpenAI members the translation reads; everything else lands in `extra`.
#[derive(Deserialize)]
struct ChatRequest {
    model: String,
    messages: Vec<contents::ChatMessage>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    max_completion_tokens: Option<u64>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    presence_penalty: Option<f64>,
    #[serde(default)]
    frequency_penalty: Option<f64>,
    #[serde(default)]
    seed: Option<i64>,
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
    response_format: Option<ResponseFormat>,
    #[serde(default)]
    modalities: Option<Vec<String>>,
    #[serde(default)]
    reasoning_effort: Option<String>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// Translates an OpenAI chat body (whose `model` the relay has already mapped to the
/// channel's upstream name) into a Gemini `generateContent` body.
pub fn request_from_openai(openai_body: &[u8]) -> Result<Translated, TranslateError> {
    let chat: ChatRequest = serde_json::from_slice(openai_body).map_err(|e| {
        TranslateError::invalid(format!(
            "The request could not be translated for Gemini: {e}"
        ))
    })?;
    refuse_unsupported(&chat)?;
    let (system_instruction, turns) = contents::translate(chat.messages)?;
    let mut extra = chat.extra;
    // A client's own generationConfig is the base the translated settings go on top of.
    let mut client_config = Map::new();
    for name in ["generation_config", "generationConfig"] {
        if let Some(Value::Object(config)) = extra.get(name) {
            client_config.extend(config.clone());
        }
    }
    for name in DROPPED.iter().chain(WRITTEN) {
        extra.remove(*name);
    }
    let (response_mime_type, response_json_schema) =
        generation::json_output(chat.response_format.as_ref())?;
    let family = family::Family::of(&chat.model);
    let thinking = chat
        .reasoning_effort
        .as_deref()
        .map(generation::reasoning_effort)
        .transpose()?
        .map(|effort| family.thinking(effort));
    // Gemini 2.5 and later refuse penalties outright; like other sampling hints without
    // an equivalent, they are dropped rather than failing the request.
    let (presence_penalty, frequency_penalty) = if family.takes_penalties() {
        (chat.presence_penalty, chat.frequency_penalty)
    } else {
        (None, None)
    };
    let generation_config = GenerationConfig {
        temperature: chat.temperature,
        top_p: chat.top_p,
        max_output_tokens: chat.max_completion_tokens.or(chat.max_tokens),
        stop_sequences: chat.stop.map(Stop::into_vec).unwrap_or_default(),
        presence_penalty,
        frequency_penalty,
        seed: chat.seed,
        response_mime_type,
        response_json_schema,
    };
    // The translated settings win over the client's own members of the same name.
    let mut config = client_config;
    if let Ok(Value::Object(translated)) = serde_json::to_value(&generation_config) {
        config.extend(translated);
    }
    if let Some(setting) = thinking {
        generation::apply_thinking(&mut config, setting);
    }
    let tools = translate_tools(chat.tools.unwrap_or_default())?;
    let tool_config = if tools.is_empty() {
        None
    } else {
        chat.tool_choice.map(translate_tool_choice)
    };
    let request = GenerateContentRequest {
        contents: turns,
        system_instruction,
        tools: if tools.is_empty() {
            Vec::new()
        } else {
            vec![Tool {
                function_declarations: tools,
            }]
        },
        tool_config,
        generation_config: (!config.is_empty()).then_some(config),
        extra,
    };
    let body = serde_json::to_vec(&request)
        .map_err(|e| TranslateError::invalid(format!("cannot write the Gemini request: {e}")))?;
    Ok(Translated {
        body,
        model: chat.model,
        stream: chat.stream.unwrap_or(false),
    })
}

/// Refuses members whose meaning would be lost. The texts are documented in docs/providers/gemini.md.
fn refuse_unsupported(chat: &ChatRequest) -> Result<(), TranslateError> {
    // Gemini could return several candidates, but every other part of the gateway (and
    // the stream translation) serves one choice.
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

/// OpenAI members with no Gemini equivalent that the client relies on.
pub fn unsupported_member(name: &str) -> Option<&'static str> {
    Some(match name {
        "audio" => "audio output (`audio`)",
        "functions" | "function_call" => "the legacy `functions` API (use `tools`)",
        "web_search_options" => "`web_search_options`",
        _ => return None,
    })
}

fn translate_tools(tools: Vec<ChatTool>) -> Result<Vec<FunctionDeclaration>, TranslateError> {
    tools
        .into_iter()
        .map(|tool| match (tool.kind.as_str(), tool.function) {
            ("function", Some(function)) => Ok(FunctionDeclaration {
                name: function.name,
                description: function.description,
                // Full JSON Schema as the client wrote it (strict mode's
                // `additionalProperties`, MCP's `$schema`, `const`, type lists), which
                // `parameters` (an OpenAPI subset) refuses. Gemini takes a function
                // without it as one without arguments.
                parameters_json_schema: function.parameters,
            }),
            (kind, _) => Err(TranslateError::unsupported(&format!(
                "a tool of type '{kind}' (only `function` tools are)"
            ))),
        })
        .collect()
}

/// `none` → NONE, `required` → ANY, a named function → ANY restricted to it; `auto` and
/// modes newer than this code → AUTO, Gemini's default.
fn translate_tool_choice(choice: ChatToolChoice) -> ToolConfig {
    let (mode, allowed_function_names) = match choice {
        ChatToolChoice::Mode(mode) => match mode.as_str() {
            "none" => ("NONE", Vec::new()),
            "required" => ("ANY", Vec::new()),
            _ => ("AUTO", Vec::new()),
        },
        ChatToolChoice::Function { function } => ("ANY", vec![function.name]),
    };
    ToolConfig {
        function_calling_config: FunctionCallingConfig {
            mode,
            allowed_function_names,
        },
    }
}
