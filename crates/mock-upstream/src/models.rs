//! The upstream model ids the strict dialects accept, with what each model takes. This is
//! the one list of live ids in the mock: a test or preset that names an id missing here
//! fails against the mock as it would against the provider. Keep it in step with the
//! providers' pages (sources and dates in `docs/providers/<provider>.md`).

/// Which sampling parameters (`temperature`, `top_p`, `top_k`) an Anthropic model takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sampling {
    Any,
    /// `temperature` and `top_p` together are refused.
    OneOf,
    /// Every sampling parameter is refused.
    None,
}

/// Which `thinking.type` an Anthropic model takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Thinking {
    /// `enabled` with `budget_tokens` only; no `output_config.effort`.
    Budget,
    /// `adaptive` (with `output_config.effort`) or, deprecated, `enabled`.
    Both,
    /// `adaptive` only; the effort scale has `xhigh`.
    AdaptiveOnly,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnthropicModel {
    pub id: &'static str,
    pub sampling: Sampling,
    pub thinking: Thinking,
}

const fn model(id: &'static str, sampling: Sampling, thinking: Thinking) -> AnthropicModel {
    AnthropicModel {
        id,
        sampling,
        thinking,
    }
}

/// Anthropic's live Messages API model ids, as of 2026-12-05. Not here, so refused with
/// 404 `not_found_error` like a retired id: `claude-sonnet-4-20250514`,
/// `claude-opus-4-20250514` and their `-4-0` aliases (retired 2026-06-15, release notes),
/// `claude-opus-4-1-20250805` (retired 2026-08-05), every Claude 3 id, and Sonnet 4.5 /
/// Opus 4.5, whose retirement is reported but not dated by a source read here.
pub const ANTHROPIC: &[AnthropicModel] = &[
    model("claude-opus-5-5", Sampling::None, Thinking::AdaptiveOnly),
    model("claude-sonnet-5-5", Sampling::None, Thinking::AdaptiveOnly),
    model("claude-haiku-5-5", Sampling::None, Thinking::AdaptiveOnly),
    model("claude-opus-5", Sampling::None, Thinking::AdaptiveOnly),
    model("claude-sonnet-5", Sampling::None, Thinking::AdaptiveOnly),
    model("claude-opus-4-8", Sampling::None, Thinking::AdaptiveOnly),
    model("claude-opus-4-7", Sampling::None, Thinking::AdaptiveOnly),
    model("claude-opus-4-6", Sampling::OneOf, Thinking::Both),
    model("claude-sonnet-4-6", Sampling::OneOf, Thinking::Both),
    model("claude-haiku-4-5", Sampling::OneOf, Thinking::Budget),
    model(
        "claude-haiku-4-5-20251001",
        Sampling::OneOf,
        Thinking::Budget,
    ),
];

/// The live Anthropic model with this exact id.
pub fn anthropic(id: &str) -> Option<&'static AnthropicModel> {
    ANTHROPIC.iter().find(|m| m.id == id)
}
