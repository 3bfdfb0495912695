//! Reading OpenAI responses and stream chunks without rebuilding them: only the fields
//! metering needs are decoded (usage, text for local counting, in-band errors), every
//! other field is skipped by the parser.

use std::borrow::Cow;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::usage::WireUsage;
use crate::ledger::money::TokenCounts;

/// A `chat.completion` body or a `chat.completion.chunk`.
#[derive(Debug, Default, Deserialize)]
pub struct CompletionView<'a> {
    #[serde(borrow, default)]
    pub id: Option<Cow<'a, str>>,
    #[serde(default)]
    pub created: Option<i64>,
    #[serde(borrow, default)]
    pub model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub choices: Option<Vec<ChoiceView<'a>>>,
    /// Embeddings answer with `data` instead of `choices`.
    #[serde(borrow, default)]
    pub data: Option<&'a RawValue>,
    #[serde(default)]
    pub usage: Option<WireUsage>,
    #[serde(borrow, default)]
    pub error: Option<&'a RawValue>,
    /// OpenAI: the tier that served the request (`default`, `priority`, `flex`…), which
    /// decides its price.
    #[serde(borrow, default)]
    pub service_tier: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ChoiceView<'a> {
    #[serde(borrow, default)]
    pub delta: Option<MessageView<'a>>,
    #[serde(borrow, default)]
    pub message: Option<MessageView<'a>>,
    /// Legacy completions carry their text here.
    #[serde(borrow, default)]
    pub text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub finish_reason: Option<Cow<'a, str>>,
    /// Moonshot puts stream usage here instead of at the top level.
    #[serde(default)]
    pub usage: Option<WireUsage>,
}

#[derive(Debug, Default, Deserialize)]
pub struct MessageView<'a> {
    #[serde(borrow, default)]
    pub content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub tool_calls: Option<&'a RawValue>,
}

impl<'a> CompletionView<'a> {
    pub fn parse(json: &'a [u8]) -> Result<CompletionView<'a>, serde_json::Error> {
        serde_json::from_slice(json)
    }

    /// Usage wherever this upstream put it.
    pub fn usage_counts(&self) -> Option<TokenCounts> {
        self.usage.as_ref().and_then(WireUsage::counts).or_else(|| {
            self.choices
                .iter()
                .flatten()
                .find_map(|c| c.usage.as_ref().and_then(WireUsage::counts))
        })
    }

    /// A usage-only chunk: `choices` present and empty.
    pub fn is_usage_only(&self) -> bool {
        self.choices.as_ref().is_some_and(Vec::is_empty) && self.usage.is_some()
    }

    pub fn has_finish_reason(&self) -> bool {
        self.choices
            .iter()
            .flatten()
            .any(|c| c.finish_reason.is_some())
    }

    /// Generated text (content, reasoning, tool-call JSON) for local counting.
    pub fn for_each_text(&self, mut f: impl FnMut(&str)) {
        for choice in self.choices.iter().flatten() {
            choice.text.as_deref().into_iter().for_each(&mut f);
            for message in [&choice.delta, &choice.message].into_iter().flatten() {
                message.content.as_deref().into_iter().for_each(&mut f);
                message
                    .reasoning_content
                    .as_deref()
                    .into_iter()
                    .for_each(&mut f);
                message
                    .tool_calls
                    .into_iter()
                    .for_each(|calls| f(calls.get()));
            }
        }
    }
}

#[derive(Serialize)]
struct UsageChunk<'a> {
    id: &'a str,
    object: &'static str,
    created: i64,
    model: &'a str,
    choices: [(); 0],
    usage: UsageOut,
}

#[derive(Serialize)]
struct UsageOut {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: CachedOut,
}

#[derive(Serialize)]
struct CachedOut {
    cached_tokens: u64,
    /// Non-standard (see `usage`); only written when there were cache writes.
    #[serde(skip_serializing_if = "is_zero")]
    cache_write_tokens: u64,
    #[serde(skip_serializing_if = "is_zero")]
    cache_write_1h_tokens: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The JSON of an OpenAI usage chunk, for clients that asked for usage when the upstream
/// reported it elsewhere (inside a choice) or not at all (local count).
pub fn usage_chunk_json(
    id: &str,
    object: &'static str,
    created: i64,
    model: &str,
    counts: TokenCounts,
) -> Bytes {
    let chunk = UsageChunk {
        id,
        object,
        created,
        model,
        choices: [],
        usage: UsageOut {
            prompt_tokens: counts.prompt,
            completion_tokens: counts.completion,
            total_tokens: counts.prompt.saturating_add(counts.completion),
            prompt_tokens_details: CachedOut {
                cached_tokens: counts.cached,
                cache_write_tokens: counts.cache_write,
                cache_write_1h_tokens: counts.cache_write_1h,
            },
        },
    };
    Bytes::from(serde_json::to_vec(&chunk).unwrap_or_default())
}

/// A chat stream's `data:` payload, as the translators to other protocols read it.
#[derive(Debug, PartialEq)]
pub enum ChatData {
    /// `[DONE]`: the answer is over.
    Done,
    Chunk(serde_json::Value),
    /// An in-band error, or a payload that is not JSON: the message to fail with.
    Error(String),
}

impl ChatData {
    pub fn read(data: &[u8]) -> ChatData {
        if data.trim_ascii() == b"[DONE]" {
            return ChatData::Done;
        }
        let chunk: serde_json::Value = match serde_json::from_slice(data) {
            Ok(chunk) => chunk,
            Err(e) => return ChatData::Error(format!("upstream sent an unreadable chunk: {e}")),
        };
        match chunk.get("error").filter(|e| !e.is_null()) {
            Some(error) => ChatData::Error(
                error
                    .get("message")
                    .and_then(serde_json::Value::as_str)
                    .map_or_else(|| error.to_string(), str::to_string),
            ),
            None => ChatData::Chunk(chunk),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_data_is_done_a_chunk_or_an_error() {
        assert_eq!(ChatData::read(b" [DONE]\n"), ChatData::Done);
        assert_eq!(
            ChatData::read(br#"{"choices":[]}"#),
            ChatData::Chunk(serde_json::json!({"choices": []}))
        );
        assert_eq!(
            ChatData::read(br#"{"error":{"message":"overloaded"}}"#),
            ChatData::Error("overloaded".into())
        );
        let ChatData::Error(unreadable) = ChatData::read(b"{") else {
            panic!("not JSON")
        };
        assert!(unreadable.starts_with("upstream sent an unreadable chunk"));
    }

    #[test]
    fn reads_a_content_chunk() {
        let json = br#"{"id":"c1","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{"content":"Hel\"lo"},"logprobs":null,"finish_reason":null}],"usage":null}"#;
        let view = CompletionView::parse(json).unwrap();
        let mut text = String::new();
        view.for_each_text(|t| text.push_str(t));
        assert_eq!(text, "Hel\"lo");
        assert!(!view.is_usage_only());
        assert!(!view.has_finish_reason());
        assert_eq!(view.usage_counts(), None);
    }

    #[test]
    fn finds_usage_at_top_level_or_in_the_choice() {
        let top = br#"{"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#;
        let view = CompletionView::parse(top).unwrap();
        assert!(view.is_usage_only());
        assert_eq!(
            view.usage_counts(),
            Some(TokenCounts {
                prompt: 3,
                cached: 0,
                cache_write: 0,
                completion: 4,
                ..Default::default()
            })
        );
        let kimi = br#"{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop","usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}]}"#;
        let view = CompletionView::parse(kimi).unwrap();
        assert!(view.has_finish_reason());
        assert_eq!(
            view.usage_counts(),
            Some(TokenCounts {
                prompt: 1,
                cached: 0,
                cache_write: 0,
                completion: 2,
                ..Default::default()
            })
        );
    }

    #[test]
    fn sees_in_band_errors() {
        let view = CompletionView::parse(br#"{"error":{"message":"boom","type":"server_error"}}"#)
            .unwrap();
        assert!(view.error.is_some());
    }

    #[test]
    fn usage_chunk_has_the_openai_shape() {
        let json = usage_chunk_json(
            "c1",
            "chat.completion.chunk",
            9,
            "m",
            TokenCounts {
                prompt: 5,
                cached: 1,
                cache_write: 0,
                completion: 2,
                ..Default::default()
            },
        );
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"id":"c1","object":"chat.completion.chunk","created":9,"model":"m","choices":[],
                "usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7,"prompt_tokens_details":{"cached_tokens":1}}})
        );
    }
}
