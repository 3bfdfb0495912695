//! The rules Anthropic's Messages API enforces on a request, as documented (checked
//! 2026-12-05; `docs/providers/anthropic.md` lists the sources). A request that breaks one
//! gets the error Anthropic gives, so a gateway that sends what the real API refuses fails
//! its tests here first.

use axum::http::StatusCode;
use serde_json::Value;

use super::thinking;
use crate::models::{self, AnthropicModel, Sampling, Thinking};

pub type Refusal = (StatusCode, String);

/// The first rule the request breaks, if any.
pub fn check(request: &Value, model: &str, max_tokens: u64) -> Result<(), Refusal> {
    // Retired and unknown ids: "Requests to retired models will fail"
    // (platform.claude.com/docs/en/about-claude/model-deprecations); the API answers 404
    // `not_found_error` naming the model.
    let Some(model) = models::anthropic(model) else {
        return Err((StatusCode::NOT_FOUND, format!("model: {model}")));
    };
    sampling(request, model)?;
    thinking_form(request, model, max_tokens)?;
    if thinking::is_on(request) {
        forced_tool(request)?;
        thinking_blocks_back(request)?;
    }
    Ok(())
}

fn bad(message: impl Into<String>) -> Refusal {
    (StatusCode::BAD_REQUEST, message.into())
}

fn sampling(request: &Value, model: &AnthropicModel) -> Result<(), Refusal> {
    let has = |name: &str| request.get(name).is_some_and(|v| !v.is_null());
    match model.sampling {
        Sampling::Any => Ok(()),
        // Sonnet 4.5 and later, Haiku 4.5, Opus 4.1 and later: 400 "temperature and top_p
        // cannot both be specified for this model" (github.com/browseros-ai/BrowserOS/issues/208,
        // github.com/open-webui/functions/pull/9).
        Sampling::OneOf if has("temperature") && has("top_p") => Err(bad(
            "temperature and top_p cannot both be specified for this model. Please use only one.",
        )),
        Sampling::OneOf => Ok(()),
        // Opus 4.7 and later: sampling parameters removed (migration guide "Migrating to
        // Claude Opus 4.7"; 400 text from github.com/Comfy-Org/ComfyUI/issues/13923).
        Sampling::None => match ["temperature", "top_p", "top_k"]
            .into_iter()
            .find(|n| has(n))
        {
            Some(name) => Err(bad(format!("`{name}` is deprecated for this model."))),
            None => Ok(()),
        },
    }
}

fn thinking_form(request: &Value, model: &AnthropicModel, max_tokens: u64) -> Result<(), Refusal> {
    let kind = request.pointer("/thinking/type").and_then(Value::as_str);
    let effort = request
        .pointer("/output_config/effort")
        .and_then(Value::as_str);
    match (kind, model.thinking) {
        // Opus 4.7 and later take adaptive thinking only (adaptive-thinking page; 400 text
        // from github.com/NousResearch/hermes-agent/issues/11137).
        (Some("enabled"), Thinking::AdaptiveOnly) => {
            return Err(bad(
                "\"thinking.type.enabled\" is not supported for this model. Use \"thinking.type.adaptive\" and \"output_config.effort\" to control thinking behavior.",
            ));
        }
        // "Older models (Sonnet 4.5, Opus 4.5, …) do not support adaptive thinking".
        (Some("adaptive"), Thinking::Budget) => {
            return Err(bad(
                "\"thinking.type.adaptive\" is not supported for this model.",
            ));
        }
        // Extended thinking: `budget_tokens` ≥ 1024 and below `max_tokens`.
        (Some("enabled"), _) => {
            let budget = request
                .pointer("/thinking/budget_tokens")
                .and_then(Value::as_u64);
            match budget {
                Some(b) if b >= 1024 && b < max_tokens => {}
                _ => {
                    return Err(bad(
                        "thinking.budget_tokens: must be at least 1024 and less than max_tokens",
                    ));
                }
            }
        }
        _ => {}
    }
    // Effort levels (platform.claude.com/docs/en/build-with-claude/effort): low, medium,
    // high, max; xhigh from Opus 4.7 on; none on models without adaptive thinking.
    let allowed: &[&str] = match model.thinking {
        Thinking::Budget => &[],
        Thinking::Both => &["low", "medium", "high", "max"],
        Thinking::AdaptiveOnly => &["low", "medium", "high", "xhigh", "max"],
    };
    match effort {
        Some(effort) if !allowed.contains(&effort) => Err(bad(format!(
            "output_config.effort: '{effort}' is not supported for this model"
        ))),
        _ => Ok(()),
    }
}

/// Extended thinking: "Tool use with thinking only supports `tool_choice: {type: auto}`
/// (the default) or `{type: none}`" (build-with-claude/extended-thinking, quoted in
/// github.com/usestrix/strix/pull/508).
fn forced_tool(request: &Value) -> Result<(), Refusal> {
    match request.pointer("/tool_choice/type").and_then(Value::as_str) {
        Some("any" | "tool") => Err(bad(
            "Thinking may not be enabled when tool_choice forces tool use.",
        )),
        _ => Ok(()),
    }
}

/// Extended thinking, "Preserving thinking blocks": in a tool loop the last assistant
/// turn must come back starting with its thinking blocks, complete and unmodified.
fn thinking_blocks_back(request: &Value) -> Result<(), Refusal> {
    let messages = request.get("messages").and_then(Value::as_array);
    let assistant_turns = messages
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, m)| m.get("role").and_then(Value::as_str) == Some("assistant"));
    let mut last = None;
    for (i, turn) in assistant_turns {
        let blocks = turn.get("content").and_then(Value::as_array);
        let blocks = blocks.map(Vec::as_slice).unwrap_or_default();
        if let Some(j) = blocks.iter().position(|b| !thinking::is_intact(b)) {
            return Err(bad(format!(
                "messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
            )));
        }
        last = Some((i, blocks));
    }
    let type_of = |b: &Value| b.get("type").and_then(Value::as_str).map(str::to_owned);
    let Some((i, blocks)) = last.filter(|(_, blocks)| {
        blocks
            .iter()
            .any(|b| type_of(b).as_deref() == Some("tool_use"))
    }) else {
        return Ok(());
    };
    let first = blocks
        .first()
        .and_then(|b| b.get("type"))
        .and_then(Value::as_str);
    match first {
        Some("thinking" | "redacted_thinking") => Ok(()),
        other => Err(bad(format!(
            "messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{}`. When `thinking` is enabled, a final `assistant` message must start with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). To avoid this requirement, disable `thinking`.",
            other.unwrap_or("nothing")
        ))),
    }
}
