//! What each Claude model family accepts, read from the upstream model id. The request
//! translator asks [`rules_for`] once per request; the rules and their sources are listed
//! in `docs/providers/anthropic.md` (checked 2026-12-05).
//!
//! | family | sampling | thinking |
//! |---|---|---|
//! | Claude 5.x and later, Opus 4.7 and later | none (refused with 400) | adaptive only (`enabled` refused with 400) |
//! | 4.6 (Opus, Sonnet) | temperature *or* top_p | adaptive; `enabled` + `budget_tokens` deprecated |
//! | 4.1 to 4.5 (Opus 4.1/4.5, Sonnet 4.5, Haiku 4.5) | temperature *or* top_p | `enabled` + `budget_tokens` |
//! | older, and ids this table cannot read | any | `enabled` + `budget_tokens` |
//!
//! Sources: Anthropic's adaptive-thinking page (platform.claude.com/docs/en/build-with-claude/adaptive-thinking,
//! as mirrored by the Amazon Bedrock user guide "Adaptive thinking"), the Opus 4.7 migration
//! guide (platform.claude.com/docs/en/about-claude/models/migration-guide, 2nd-hand through
//! OpenRouter's "Claude 4.7 Migration Guide"), and the 400 texts reported in
//! github.com/browseros-ai/BrowserOS/issues/208 (Sonnet 4.5: "temperature and top_p cannot
//! both be specified for this model"), github.com/open-webui/functions/pull/9 (Opus 4.1),
//! github.com/Comfy-Org/ComfyUI/issues/13923 (Opus 4.7: "`temperature` is deprecated for
//! this model") and github.com/NousResearch/hermes-agent/issues/11137 (Opus 4.7:
//! "\"thinking.type.enabled\" is not supported for this model").

/// Which sampling parameters (`temperature`, `top_p`, `top_k`) the model takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sampling {
    Any,
    /// `temperature` and `top_p` together are refused: only one is sent (temperature wins).
    OneOf,
    /// Every sampling parameter is refused: none is sent.
    None,
}

/// How the model wants extended thinking switched on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Thinking {
    /// `{"type": "enabled", "budget_tokens": n}`.
    Budget,
    /// `{"type": "adaptive"}` plus `output_config.effort` (the budget form still works, deprecated).
    Adaptive,
    /// Like `Adaptive`, and the budget form is refused; the effort scale has `xhigh`.
    AdaptiveOnly,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelRules {
    pub sampling: Sampling,
    pub thinking: Thinking,
    /// Takes `output_config.format` (structured outputs: Haiku 4.5, Sonnet 4.5, Opus 4.1
    /// and later, per platform.claude.com/docs/en/build-with-claude/structured-outputs).
    pub structured_outputs: bool,
}

const LATEST: ModelRules = ModelRules {
    sampling: Sampling::None,
    thinking: Thinking::AdaptiveOnly,
    structured_outputs: true,
};
const ADAPTIVE: ModelRules = ModelRules {
    sampling: Sampling::OneOf,
    thinking: Thinking::Adaptive,
    structured_outputs: true,
};
const ONE_SAMPLER: ModelRules = ModelRules {
    sampling: Sampling::OneOf,
    thinking: Thinking::Budget,
    structured_outputs: true,
};
const LEGACY: ModelRules = ModelRules {
    sampling: Sampling::Any,
    thinking: Thinking::Budget,
    structured_outputs: false,
};

/// (family, or `*` for any; lowest version; rules), newest first: the first row the id
/// reaches applies.
const TABLE: &[(&str, (u32, u32), ModelRules)] = &[
    ("*", (5, 0), LATEST),
    ("opus", (4, 7), LATEST),
    ("*", (4, 6), ADAPTIVE),
    ("*", (4, 1), ONE_SAMPLER),
];

/// The rules for an upstream model id such as `claude-opus-4-7`, `claude-haiku-4-5-20251001`
/// or `claude-3-7-sonnet-20250219`.
pub fn rules_for(model: &str) -> ModelRules {
    let Some((family, version)) = family_and_version(model) else {
        return LEGACY;
    };
    TABLE
        .iter()
        .find(|(f, since, _)| (*f == "*" || *f == family) && version >= *since)
        .map_or(LEGACY, |(_, _, rules)| *rules)
}

/// `claude-<family>-<major>[-<minor>][-<date>]` or `claude-<major>[-<minor>]-<family>[-<date>]`.
/// An 8-digit date is not a version; a minor absent is 0.
fn family_and_version(model: &str) -> Option<(&str, (u32, u32))> {
    let start = model.find("claude-")? + "claude-".len();
    let mut family = None;
    let mut numbers = Vec::new();
    for token in model[start..].split(['-', '.', '@', ':']) {
        if token.bytes().all(|b| b.is_ascii_alphabetic()) && !token.is_empty() {
            family.get_or_insert(token);
        } else if token.len() <= 2
            && let Ok(n) = token.parse::<u32>()
        {
            numbers.push(n);
        }
    }
    let major = *numbers.first()?;
    Some((family?, (major, numbers.get(1).copied().unwrap_or(0))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_read_from_every_id_shape() {
        for (id, rules) in [
            ("claude-opus-4-8", LATEST),
            ("claude-opus-4-7", LATEST),
            ("claude-sonnet-5", LATEST),
            ("claude-haiku-5-5", LATEST),
            ("claude-opus-4-6", ADAPTIVE),
            ("claude-sonnet-4-6", ADAPTIVE),
            ("claude-sonnet-4-5-20250929", ONE_SAMPLER),
            ("claude-haiku-4-5", ONE_SAMPLER),
            ("claude-opus-4-1-20250805", ONE_SAMPLER),
            ("claude-sonnet-4-20250514", LEGACY),
            ("claude-opus-4-0", LEGACY),
            ("claude-3-7-sonnet-20250219", LEGACY),
            ("claude-3-5-haiku-latest", LEGACY),
            ("anthropic.claude-opus-4-7", LATEST),
            ("my-own-alias", LEGACY),
            ("claude-", LEGACY),
        ] {
            assert_eq!(rules_for(id), rules, "{id}");
        }
    }
}
