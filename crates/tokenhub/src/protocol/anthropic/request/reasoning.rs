//! `reasoning_effort` → `thinking` (and `output_config.effort`) in the form the model
//! family wants (see `model_rules`), and the sampling parameters the family takes.

use serde_json::{Map, Value, json};

use super::super::TranslateError;
use super::super::model_rules::{ModelRules, Sampling, Thinking};
use super::RequestOptions;

/// `max_tokens`, `thinking` and `output_config.effort` for one request.
#[derive(Debug, PartialEq)]
pub(super) struct Reasoning {
    pub max_tokens: u64,
    pub thinking: Option<Value>,
    pub effort: Option<&'static str>,
}

/// `effort` is the client's `reasoning_effort`, or `None` when thinking stays off.
pub(super) fn reasoning(
    effort: Option<&str>,
    limit: Option<u64>,
    rules: ModelRules,
    options: &RequestOptions,
) -> Result<Reasoning, TranslateError> {
    let off = Reasoning {
        max_tokens: limit.unwrap_or(options.default_max_tokens),
        thinking: None,
        effort: None,
    };
    let Some(effort) = effort else {
        return Ok(off);
    };
    let Some(budget) = thinking_budget(effort)? else {
        return Ok(off);
    };
    match rules.thinking {
        Thinking::Budget => with_budget(limit, budget, options),
        // Adaptive thinking counts inside `max_tokens` like a budget, with no minimum:
        // without a client limit the answer keeps the default on top of what the effort
        // would have budgeted.
        Thinking::Adaptive | Thinking::AdaptiveOnly => Ok(Reasoning {
            max_tokens: limit.unwrap_or(budget + options.default_max_tokens),
            thinking: Some(json!({"type": "adaptive"})),
            effort: Some(effort_level(effort, rules.thinking)),
        }),
    }
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

/// `reasoning_effort` → `output_config.effort` (Anthropic's scale: low, medium, high,
/// max, and xhigh from Opus 4.7 on). `xhigh` is the nearest level on 4.6, which has none.
fn effort_level(effort: &str, thinking: Thinking) -> &'static str {
    match effort {
        "minimal" | "low" => "low",
        "medium" => "medium",
        "xhigh" if thinking == Thinking::AdaptiveOnly => "xhigh",
        "xhigh" => "max",
        _ => "high",
    }
}

/// `max_tokens` and `thinking` for a thinking budget. Anthropic counts thinking inside
/// `max_tokens` and needs `budget_tokens < max_tokens`: without a client limit the answer
/// keeps the default on top of the budget; under a client limit (which, like OpenAI's
/// `max_completion_tokens`, covers reasoning too) the budget shrinks to fit.
fn with_budget(
    limit: Option<u64>,
    budget: u64,
    options: &RequestOptions,
) -> Result<Reasoning, TranslateError> {
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
    Ok(Reasoning {
        max_tokens,
        thinking: Some(json!({"type": "enabled", "budget_tokens": budget})),
        effort: None,
    })
}

/// The `temperature` and `top_p` to send. Thinking refuses sampling changes
/// (extended-thinking "Feature compatibility"), so with thinking on neither is sent, nor a
/// passed-through `top_k`; otherwise the family decides: `OneOf` keeps temperature when
/// both are set, `None` sends none. Dropping, not refusing, keeps clients that always send
/// a default temperature working; the answer is one the model could have given anyway.
pub(super) fn sampling(
    rules: ModelRules,
    thinking_on: bool,
    temperature: Option<f64>,
    top_p: Option<f64>,
    extra: &mut Map<String, Value>,
) -> (Option<f64>, Option<f64>) {
    if thinking_on || rules.sampling == Sampling::None {
        extra.remove("top_k");
        return (None, None);
    }
    // Anthropic's range is [0, 1]; OpenAI's [0, 2].
    let temperature = temperature.map(|t| t.clamp(0.0, 1.0));
    match rules.sampling {
        Sampling::OneOf if temperature.is_some() => (temperature, None),
        _ => (temperature, top_p),
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::model_rules::rules_for;
    use super::*;

    #[test]
    fn effort_becomes_a_budget_or_adaptive_thinking_by_family() {
        let options = RequestOptions::default();
        let budget = reasoning(
            Some("medium"),
            None,
            rules_for("claude-haiku-4-5"),
            &options,
        );
        assert_eq!(
            budget.unwrap().thinking,
            Some(json!({"type": "enabled", "budget_tokens": 4096}))
        );
        for (model, effort, level) in [
            ("claude-opus-4-7", "xhigh", "xhigh"),
            ("claude-sonnet-4-6", "xhigh", "max"),
            ("claude-opus-4-6", "minimal", "low"),
            ("claude-sonnet-5", "high", "high"),
        ] {
            let r = reasoning(Some(effort), Some(500), rules_for(model), &options).unwrap();
            assert_eq!(r.thinking, Some(json!({"type": "adaptive"})), "{model}");
            assert_eq!((r.max_tokens, r.effort), (500, Some(level)), "{model}");
        }
        let off = reasoning(Some("none"), None, rules_for("claude-opus-4-7"), &options);
        assert_eq!(off.unwrap().thinking, None);
    }

    #[test]
    fn sampling_follows_the_family() {
        let mut extra = Map::new();
        let one_of = rules_for("claude-sonnet-4-6");
        assert_eq!(
            sampling(one_of, false, Some(1.5), Some(0.5), &mut extra),
            (Some(1.0), None)
        );
        assert_eq!(
            sampling(one_of, false, None, Some(0.5), &mut extra),
            (None, Some(0.5))
        );
        extra.insert("top_k".into(), json!(5));
        let legacy = rules_for("claude-3-7-sonnet-20250219");
        assert_eq!(
            sampling(legacy, false, Some(0.2), Some(0.5), &mut extra),
            (Some(0.2), Some(0.5))
        );
        assert!(extra.contains_key("top_k"));
        let latest = rules_for("claude-opus-4-7");
        assert_eq!(
            sampling(latest, false, Some(0.2), Some(0.5), &mut extra),
            (None, None)
        );
        assert!(!extra.contains_key("top_k"));
    }
}
