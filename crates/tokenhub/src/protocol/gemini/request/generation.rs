//! The `generationConfig` settings that need more than a rename: `reasoning_effort` →
//! `thinkingConfig` (a budget or a level, by model family: see `family`), and
//! `response_format` → `responseMimeType` plus `responseJsonSchema`.

use serde_json::{Map, Value, json};

use super::super::TranslateError;
use super::family::Thinking;
use crate::protocol::openai::chat::ResponseFormat;

/// Checks a `reasoning_effort` (OpenAI's names); `family::Family::thinking` says what
/// each becomes on the model at hand.
pub fn reasoning_effort(effort: &str) -> Result<&str, TranslateError> {
    match effort {
        "none" | "minimal" | "low" | "medium" | "high" | "xhigh" => Ok(effort),
        other => Err(TranslateError::invalid(format!(
            "`reasoning_effort` must be one of none, minimal, low, medium, high, xhigh (got '{other}')"
        ))),
    }
}

/// Puts a thinking setting into `config`'s thinking settings, unless the client set
/// Gemini's own (`thinkingBudget` or `thinkingLevel`, in either spelling): the native
/// setting is the more precise request, as `thinking` is for Anthropic channels. Other
/// members the client put there (`includeThoughts`) are kept.
pub fn apply_thinking(config: &mut Map<String, Value>, setting: Thinking) {
    let key = if config.contains_key("thinking_config") {
        "thinking_config"
    } else {
        "thinkingConfig"
    };
    let thinking = config.entry(key).or_insert_with(|| json!({}));
    let Value::Object(thinking) = thinking else {
        return; // not an object: Gemini will refuse it with its own message
    };
    let native = [
        "thinkingBudget",
        "thinking_budget",
        "thinkingLevel",
        "thinking_level",
    ];
    if native.iter().any(|name| thinking.contains_key(*name)) {
        return;
    }
    match setting {
        Thinking::Budget(budget) => thinking.insert("thinkingBudget".into(), json!(budget)),
        Thinking::Level(level) => thinking.insert("thinkingLevel".into(), json!(level)),
    };
}

/// `response_format` → (`responseMimeType`, `responseJsonSchema`). `text` asks for
/// nothing; `json_object` for JSON; `json_schema` for JSON matching its schema, sent as
/// standard JSON Schema (`responseJsonSchema`, not the OpenAPI subset `responseSchema`
/// takes, so the client's schema goes as written). Other types are refused.
pub fn json_output(
    format: Option<&ResponseFormat>,
) -> Result<(Option<&'static str>, Option<Value>), TranslateError> {
    let Some(format) = format else {
        return Ok((None, None));
    };
    match format.kind.as_str() {
        "text" => Ok((None, None)),
        "json_object" => Ok((Some("application/json"), None)),
        "json_schema" => {
            let schema = format
                .json_schema
                .as_ref()
                .and_then(|f| f.schema.clone())
                .ok_or_else(|| {
                    TranslateError::invalid(
                        "`response_format.json_schema.schema` is required for models served by Gemini",
                    )
                })?;
            Ok((Some("application/json"), Some(schema)))
        }
        other => Err(TranslateError::unsupported(&format!(
            "`response_format` of type `{other}`"
        ))),
    }
}
