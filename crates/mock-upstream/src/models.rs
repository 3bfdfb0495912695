//! The model ids each vendor's API serves today, in one place, so the mock refuses a
//! retired or misspelt id the way the vendor does. One section per vendor; each list
//! says where it was read and when (2026-12-05 unless noted). A vendor is recognised by
//! its id prefix; ids of no known vendor (`mock-gpt`, `vendor-model`, …) are the mock's
//! own and always served.
//!
//! Anthropic's ids, with what each model takes, are the last section (the Messages
//! dialect enforces them).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A vendor whose model ids the mock knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vendor {
    DeepSeek,
    Qwen,
    Zhipu,
    Doubao,
    Moonshot,
    OpenAi,
    Gemini,
}

// --- DeepSeek: https://api-docs.deepseek.com/zh-cn/quick_start/pricing lists
// `deepseek-flash` and `deepseek-v4-pro`, and says the old `deepseek-v4-flash` name is
// still answered (by V4.1 Flash). `deepseek-chat`/`deepseek-reasoner` were retired on
// 2026-07-24 (DeepSeek's V4 release note, 2nd-hand).
const DEEPSEEK: &[&str] = &["deepseek-flash", "deepseek-v4-pro", "deepseek-v4-flash"];

// --- Qwen (DashScope): stable aliases and current generations from
// https://www.alibabacloud.com/help/en/model-studio/compatibility-of-openai-with-dashscope;
// qwen-turbo, qwq-plus, qwen-vl-max/plus and qvq-max went offline on 2026-10-10
// (Model Studio notice "decommissioning of certain historical mainline models").
const QWEN: &[&str] = &[
    "qwen-plus",
    "qwen-plus-latest",
    "qwen-max",
    "qwen-max-latest",
    "qwen-flash",
    "qwen3.6-plus",
    "qwen3.6-flash",
];

// --- Zhipu: https://docs.bigmodel.cn/cn/guide/models/text/glm-4 (GLM-4 series, dated
// ids) and GLM-5. Model codes are matched without regard to case, as the docs print
// them in capitals (`GLM-4-Flash-250414`).
const ZHIPU: &[&str] = &[
    "glm-4-flash-250414",
    "glm-4-flashx-250414",
    "glm-4-air-250414",
    "glm-4-plus",
    "glm-5",
];

// --- Doubao (Volcengine Ark): the Seed 2.0/2.1 ids; the 1.5 and 1.6 series are
// discontinued (2nd-hand: CometAPI notice 2026-02-04, retirement schedule 2026-09).
// Ark also takes endpoint ids (`ep-…`), which are not model ids and pass.
const DOUBAO: &[&str] = &[
    "doubao-seed-2-0-pro-260215",
    "doubao-seed-2-0-lite-260215",
    "doubao-seed-2-0-mini-260215",
    "doubao-seed-2-1-pro-260628",
    "doubao-seed-2-1-turbo-260628",
];

// --- Moonshot: https://platform.kimi.ai/docs/api/models-overview (parameter table by
// family) and the thinking guide https://platform.moonshot.cn/docs/guide/use-kimi-k2-thinking-model.
const MOONSHOT: &[&str] = &[
    "kimi-k2.5",
    "kimi-k2.6",
    "kimi-k2-thinking",
    "kimi-k2-thinking-turbo",
    "kimi-k2-turbo-preview",
    "kimi-k2-0905-preview",
    "moonshot-v1-8k",
    "moonshot-v1-32k",
    "moonshot-v1-128k",
];

// --- OpenAI: https://developers.openai.com/api/docs/deprecations. gpt-4o and gpt-4o-mini
// are deprecated (shut down 2027-01-14) but still served; gpt-4-turbo, gpt-3.5-turbo and
// gpt-4o-2024-05-13 were shut down on 2026-10-23.
const OPENAI: &[&str] = &[
    "gpt-4o",
    "gpt-4o-2024-08-06",
    "gpt-4o-mini",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-5.1",
    "gpt-6-luna",
];

// --- Gemini: https://ai.google.dev/gemini-api/docs/deprecations. gemini-2.5-pro and
// gemini-2.5-flash were shut down on 2026-12-01 (2nd-hand: aideprecations.com, reading
// that page on 2026-11-10); gemini-3-pro-preview on 2026-03-09; the 2.0 family earlier.
// gemini-2.5-flash-lite "remains available until further notice".
const GEMINI: &[&str] = &[
    "gemini-3.8-flash",
    "gemini-3.7-flash",
    "gemini-3.6-flash",
    "gemini-3.5-flash",
    "gemini-3.5-flash-lite",
    "gemini-3.1-flash-lite",
    "gemini-3.1-pro-preview",
    "gemini-2.5-flash-lite",
];

impl Vendor {
    /// The vendor an id belongs to, by its prefix.
    pub fn of(model: &str) -> Option<Vendor> {
        let lower = model.to_ascii_lowercase();
        let prefixed = |prefixes: &[&str]| prefixes.iter().any(|p| lower.starts_with(p));
        Some(if prefixed(&["deepseek-"]) {
            Vendor::DeepSeek
        } else if prefixed(&["qwen", "qwq-", "qvq-"]) {
            Vendor::Qwen
        } else if prefixed(&["glm-"]) {
            Vendor::Zhipu
        } else if prefixed(&["doubao-"]) {
            Vendor::Doubao
        } else if prefixed(&["kimi-", "moonshot-"]) {
            Vendor::Moonshot
        } else if prefixed(&["gpt-", "o1", "o3", "o4-", "chatgpt-"]) {
            Vendor::OpenAi
        } else if prefixed(&["gemini-"]) {
            Vendor::Gemini
        } else {
            return None;
        })
    }

    pub fn live_ids(self) -> &'static [&'static str] {
        match self {
            Vendor::DeepSeek => DEEPSEEK,
            Vendor::Qwen => QWEN,
            Vendor::Zhipu => ZHIPU,
            Vendor::Doubao => DOUBAO,
            Vendor::Moonshot => MOONSHOT,
            Vendor::OpenAi => OPENAI,
            Vendor::Gemini => GEMINI,
        }
    }

    fn serves(self, model: &str) -> bool {
        self.live_ids()
            .iter()
            .any(|id| id.eq_ignore_ascii_case(model))
    }
}

/// Whether the mock serves `model` (the ids of no known vendor always are).
pub fn is_live(model: &str) -> bool {
    Vendor::of(model).is_none_or(|vendor| vendor.serves(model))
}

/// The refusal of an OpenAI-compatible vendor for an id it does not serve, in that
/// vendor's own status and error shape, or `None` when the id is served.
pub fn refuse_unknown(model: &str) -> Option<Response> {
    let vendor = Vendor::of(model)?;
    if vendor.serves(model) {
        return None;
    }
    let (status, body) = match vendor {
        // DeepSeek answers an unknown model with a 400.
        Vendor::DeepSeek => (
            StatusCode::BAD_REQUEST,
            json!({"error": {"message": "Model Not Exist", "type": "invalid_request_error",
                "param": null, "code": "invalid_request_error"}}),
        ),
        // Zhipu's business code 1211 (https://docs.bigmodel.cn/cn/api/api-code).
        Vendor::Zhipu => (
            StatusCode::BAD_REQUEST,
            json!({"error": {"code": "1211", "message": "模型不存在，请检查模型代码。"}}),
        ),
        // Ark: 404 InvalidEndpointOrModel.NotFound (https://volcengine.com/docs/82379/1299023).
        Vendor::Doubao => (
            StatusCode::NOT_FOUND,
            json!({"error": {"code": "InvalidEndpointOrModel.NotFound",
                "message": format!("The model or endpoint {model} does not exist or you do not have access to it."),
                "param": "model", "type": "NotFound"}}),
        ),
        Vendor::Moonshot => (
            StatusCode::NOT_FOUND,
            json!({"error": {"message": format!("Not found the model {model} or Permission denied"),
                "type": "resource_not_found_error"}}),
        ),
        Vendor::Qwen | Vendor::OpenAi | Vendor::Gemini => (
            StatusCode::NOT_FOUND,
            json!({"error": {"message": format!("The model `{model}` does not exist or you do not have access to it."),
                "type": "invalid_request_error", "param": "model", "code": "model_not_found"}}),
        ),
    };
    Some((status, Json(body)).into_response())
}

// --- Anthropic (Messages dialect): see docs/providers/anthropic.md for sources.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retired_ids_are_refused_and_live_ones_served() {
        for retired in [
            "deepseek-chat",
            "deepseek-reasoner",
            "doubao-1-5-pro-32k-250115",
            "glm-4-flash",
            "gemini-2.5-flash",
            "gemini-3-pro-preview",
            "qwen-turbo",
        ] {
            assert!(!is_live(retired), "{retired}");
        }
        for live in [
            "deepseek-flash",
            "GLM-4-Flash-250414",
            "kimi-k2.5",
            "gemini-3.5-flash",
            "mock-gpt",
        ] {
            assert!(is_live(live), "{live}");
        }
    }
}
