//! Normalising the usage shapes upstreams report into one `TokenCounts`.
//!
//! Shapes handled: OpenAI (`prompt_tokens_details.cached_tokens`), DeepSeek
//! (`prompt_cache_hit_tokens`), Moonshot (duplicate top-level `cached_tokens`, and usage
//! inside the choice in streams — see `chunk`), and TokenHub's own translation of
//! Anthropic usage (`prompt_tokens_details.cache_write_tokens`, a non-standard field that
//! OpenRouter spells the same way, and `cache_write_1h_tokens`, the part written for an
//! hour), and DashScope's context cache (`prompt_tokens_details.cache_creation_input_tokens`
//! for explicit cache writes, and `cache_type: "ephemeral"` when `cached_tokens` are hits
//! of the explicit cache rather than the implicit one; the two never mix in one request).
//! `prompt_tokens` always includes cached and cache-written tokens in the result.

use serde::Deserialize;

use crate::ledger::money::TokenCounts;

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct WireUsage {
    #[serde(default)]
    pub prompt_tokens: Option<u64>,
    #[serde(default)]
    pub completion_tokens: Option<u64>,
    #[serde(default)]
    pub total_tokens: Option<u64>,
    #[serde(default)]
    pub prompt_tokens_details: Option<PromptDetails>,
    /// DeepSeek.
    #[serde(default)]
    pub prompt_cache_hit_tokens: Option<u64>,
    /// Moonshot's duplicate spelling.
    #[serde(default)]
    pub cached_tokens: Option<u64>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct PromptDetails {
    #[serde(default)]
    pub cached_tokens: Option<u64>,
    /// Prompt tokens written to the cache (priced apart); emitted by the Anthropic adapter.
    #[serde(default)]
    pub cache_write_tokens: Option<u64>,
    /// The part of `cache_write_tokens` written with a 1-hour lifetime (Anthropic adapter).
    #[serde(default)]
    pub cache_write_1h_tokens: Option<u64>,
    /// DashScope's spelling of cache writes (explicit cache only).
    #[serde(default)]
    pub cache_creation_input_tokens: Option<u64>,
    /// DashScope's breakdown of those writes by lifetime, in Anthropic's names.
    #[serde(default)]
    pub cache_creation: Option<CacheCreation>,
    /// DashScope: `"ephemeral"` when the explicit cache served this request.
    #[serde(default)]
    pub cache_type: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct CacheCreation {
    #[serde(default)]
    pub ephemeral_1h_input_tokens: Option<u64>,
}

impl WireUsage {
    /// The counts, or `None` when the object says nothing usable (all zero or absent),
    /// which callers treat as "no usage reported".
    pub fn counts(&self) -> Option<TokenCounts> {
        let completion = self.completion_tokens.unwrap_or(0);
        let prompt = self
            .prompt_tokens
            .unwrap_or_else(|| self.total_tokens.unwrap_or(0).saturating_sub(completion));
        if prompt == 0 && completion == 0 {
            return None;
        }
        let cached = self
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens)
            .or(self.prompt_cache_hit_tokens)
            .or(self.cached_tokens)
            .unwrap_or(0)
            .min(prompt);
        let details = self.prompt_tokens_details.clone().unwrap_or_default();
        let cache_write = details
            .cache_write_tokens
            .or(details.cache_creation_input_tokens)
            .unwrap_or(0);
        let cache_write_1h = details.cache_write_1h_tokens.or(details
            .cache_creation
            .and_then(|c| c.ephemeral_1h_input_tokens));
        let explicit_cache = details.cache_type.as_deref() == Some("ephemeral");
        let counts = TokenCounts {
            prompt,
            cached,
            cache_write,
            completion,
            explicit_cached: if explicit_cache { cached } else { 0 },
            cache_write_1h: cache_write_1h.unwrap_or(0),
        };
        Some(counts.capped())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(json: &str) -> Option<TokenCounts> {
        serde_json::from_str::<WireUsage>(json).unwrap().counts()
    }

    #[test]
    fn openai_shape() {
        let json = r#"{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21,"prompt_tokens_details":{"cached_tokens":4,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}"#;
        assert_eq!(
            counts(json),
            Some(TokenCounts {
                prompt: 9,
                cached: 4,
                cache_write: 0,
                completion: 12,
                ..Default::default()
            })
        );
    }

    #[test]
    fn deepseek_shape() {
        let json = r#"{"prompt_tokens":100,"completion_tokens":5,"total_tokens":105,"prompt_cache_hit_tokens":60,"prompt_cache_miss_tokens":40}"#;
        assert_eq!(
            counts(json),
            Some(TokenCounts {
                prompt: 100,
                cached: 60,
                cache_write: 0,
                completion: 5,
                ..Default::default()
            })
        );
    }

    #[test]
    fn moonshot_duplicate_spelling() {
        assert_eq!(
            counts(
                r#"{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12,"cached_tokens":8}"#
            ),
            Some(TokenCounts {
                prompt: 10,
                cached: 8,
                cache_write: 0,
                completion: 2,
                ..Default::default()
            })
        );
    }

    #[test]
    fn total_only_and_empty_usage() {
        assert_eq!(
            counts(r#"{"total_tokens":30,"completion_tokens":10}"#),
            Some(TokenCounts {
                prompt: 20,
                cached: 0,
                cache_write: 0,
                completion: 10,
                ..Default::default()
            })
        );
        assert_eq!(
            counts(r#"{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}"#),
            None
        );
        assert_eq!(counts(r#"{}"#), None);
    }

    #[test]
    fn anthropic_cache_writes_as_translated_by_tokenhub() {
        let json = r#"{"prompt_tokens":100,"completion_tokens":5,"total_tokens":105,"prompt_tokens_details":{"cached_tokens":30,"cache_write_tokens":60}}"#;
        assert_eq!(
            counts(json),
            Some(TokenCounts {
                prompt: 100,
                cached: 30,
                cache_write: 60,
                completion: 5,
                ..Default::default()
            })
        );
        let overclaimed = r#"{"prompt_tokens":10,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":4,"cache_write_tokens":9}}"#;
        assert_eq!(counts(overclaimed).unwrap().cache_write, 6);
    }

    #[test]
    fn cached_is_capped_by_prompt() {
        assert_eq!(counts(r#"{"prompt_tokens":3,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":9}}"#).unwrap().cached, 3);
    }

    #[test]
    fn dashscope_context_cache() {
        let implicit = r#"{"prompt_tokens":3019,"completion_tokens":104,"total_tokens":3123,"prompt_tokens_details":{"cached_tokens":2048}}"#;
        let implicit = counts(implicit).unwrap();
        assert_eq!((implicit.cached, implicit.explicit_cached), (2048, 0));
        let created = r#"{"prompt_tokens":3019,"completion_tokens":104,"total_tokens":3123,"prompt_tokens_details":{"text_tokens":3019,"cache_creation":{"ephemeral_5m_input_tokens":1500},"cache_creation_input_tokens":1500,"cache_type":"ephemeral","cached_tokens":0}}"#;
        assert_eq!(
            counts(created),
            Some(TokenCounts {
                prompt: 3019,
                cache_write: 1500,
                completion: 104,
                ..Default::default()
            })
        );
        let hit = r#"{"prompt_tokens":3019,"completion_tokens":104,"prompt_tokens_details":{"cache_creation_input_tokens":0,"cache_type":"ephemeral","cached_tokens":1500}}"#;
        let hit = counts(hit).unwrap();
        assert_eq!(
            (hit.cached, hit.explicit_cached, hit.cache_write),
            (1500, 1500, 0)
        );
    }

    #[test]
    fn one_hour_cache_writes_as_translated_by_tokenhub() {
        let json = r#"{"prompt_tokens":100,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":10,"cache_write_tokens":60,"cache_write_1h_tokens":40}}"#;
        let counts = counts(json).unwrap();
        assert_eq!((counts.cache_write, counts.cache_write_1h), (60, 40));
    }
}
