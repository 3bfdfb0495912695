//! Reading OpenAI responses and stream chunks without rebuilding them: only the fields
//! metering needs are decoded (usage, text for local counting, in-band errors), every
//! other member is checked to be JSON and skipped, in one pass (`reader.rs`).

pub(super) mod reader;

use std::borrow::Cow;

use bytes::Bytes;
use serde::Serialize;

use self::reader::{JsonReader, Key, Read};
use super::splice::MemberSite;
use super::usage::WireUsage;
use crate::ledger::money::TokenCounts;

pub use self::reader::ReadError;

/// A `chat.completion` body or a `chat.completion.chunk`: what metering reads of it.
#[derive(Debug, Default)]
pub struct CompletionView<'a> {
    pub id: Option<Cow<'a, str>>,
    pub created: Option<i64>,
    pub model: Option<Cow<'a, str>>,
    /// How many `choices` there are; `None` without the member.
    pub choices: Option<usize>,
    /// Embeddings answer with `data` instead of `choices` (its JSON).
    pub data: Option<&'a [u8]>,
    /// A `usage` member that is not null was read.
    pub has_usage: bool,
    /// What it says, when it says anything (`WireUsage::counts`).
    usage: Option<TokenCounts>,
    /// An in-band error (its JSON).
    pub error: Option<&'a [u8]>,
    /// OpenAI: the tier that served the request (`default`, `priority`, `flex`…), which
    /// decides its price.
    pub service_tier: Option<Cow<'a, str>>,
    /// Moonshot puts stream usage in a choice instead of at the top level: the first
    /// choice's that says anything.
    choice_usage: Option<TokenCounts>,
    finish_reason: bool,
    /// Generated text (content, reasoning, tool-call JSON, legacy `text`), in the order
    /// the members come.
    text: Vec<Cow<'a, str>>,
    /// Where its `usage` value lies and where it closes, for splicing its cost in
    /// without reading it again.
    usage_site: MemberSite,
    /// More than one `usage` member: every one must be set, so the object is read again.
    usage_repeated: bool,
}

impl<'a> CompletionView<'a> {
    /// Reads a body or chunk. Like the serde types it replaced, a member of the wrong
    /// type (a `choices` that is not an array of objects, a `created` that is no
    /// integer…) makes the whole of it unreadable; `null` counts as absent.
    pub fn parse(json: &'a [u8]) -> Result<CompletionView<'a>, ReadError> {
        let mut view = CompletionView::default();
        let mut reader = JsonReader::new(json);
        reader.object(|reader, key| {
            view.usage_site.has_members = true;
            view.member(reader, key)
        })?;
        view.usage_site.close = reader.consumed() - 1;
        reader.end()?;
        Ok(view)
    }

    /// Where its `usage` member's value is and where it closes, to set its usage without
    /// reading it again; `None` when it has more than one `usage` (each must be set).
    pub fn usage_site(&self) -> Option<&MemberSite> {
        (!self.usage_repeated).then_some(&self.usage_site)
    }

    fn member(&mut self, reader: &mut JsonReader<'a>, key: Key<'a>) -> Read<()> {
        match &*key.name() {
            b"choices" => {
                if !reader.null()? {
                    let mut count = 0;
                    reader.array(|reader| {
                        count += 1;
                        self.choice(reader)
                    })?;
                    self.choices = Some(count);
                }
            }
            b"usage" => {
                let start = reader.position();
                let usage = usage(reader)?;
                let value = start..reader.consumed();
                self.usage_repeated |= self.usage_site.value.replace(value).is_some();
                self.has_usage = usage.is_some();
                self.usage = usage.as_ref().and_then(WireUsage::counts);
            }
            b"id" => self.id = reader.optional_string()?,
            b"model" => self.model = reader.optional_string()?,
            b"created" => self.created = reader.optional_i64()?,
            b"service_tier" => self.service_tier = reader.optional_string()?,
            b"error" => self.error = raw_unless_null(reader)?,
            b"data" => self.data = raw_unless_null(reader)?,
            _ => drop(reader.value()?),
        }
        Ok(())
    }

    fn choice(&mut self, reader: &mut JsonReader<'a>) -> Read<()> {
        reader.object(|reader, key| {
            match &*key.name() {
                b"delta" | b"message" => {
                    if !reader.null()? {
                        reader.object(|reader, key| self.message_member(reader, key))?;
                    }
                }
                b"finish_reason" => {
                    self.finish_reason |= reader.optional_string()?.is_some();
                }
                b"text" => self.text.extend(reader.optional_string()?),
                b"usage" => {
                    let counts = usage(reader)?.as_ref().and_then(WireUsage::counts);
                    self.choice_usage = self.choice_usage.or(counts);
                }
                _ => drop(reader.value()?),
            }
            Ok(())
        })
    }

    fn message_member(&mut self, reader: &mut JsonReader<'a>, key: Key<'a>) -> Read<()> {
        match &*key.name() {
            b"content" | b"reasoning_content" => self.text.extend(reader.optional_string()?),
            // The calls' JSON is counted as it is written, like the text.
            b"tool_calls" => self
                .text
                .extend(reader.optional_raw_text()?.map(Cow::Borrowed)),
            _ => drop(reader.value()?),
        }
        Ok(())
    }

    /// Usage wherever this upstream put it.
    pub fn usage_counts(&self) -> Option<TokenCounts> {
        self.usage.or(self.choice_usage)
    }

    /// A usage-only chunk: `choices` present and empty.
    pub fn is_usage_only(&self) -> bool {
        self.choices == Some(0) && self.has_usage
    }

    pub fn has_finish_reason(&self) -> bool {
        self.finish_reason
    }

    /// Generated text (content, reasoning, tool-call JSON) for local counting.
    pub fn for_each_text(&self, f: impl FnMut(&str)) {
        self.text.iter().map(|text| &**text).for_each(f);
    }
}

/// A usage object, or `null`. Read by serde from the object's bytes: it comes once a
/// stream, and its shapes are many (`usage.rs`).
fn usage(reader: &mut JsonReader<'_>) -> Read<Option<WireUsage>> {
    let at = reader.position();
    let Some(raw) = raw_unless_null(reader)? else {
        return Ok(None);
    };
    serde_json::from_slice(raw)
        .map(Some)
        .map_err(|_| ReadError::new("a usage object", at))
}

fn raw_unless_null<'a>(reader: &mut JsonReader<'a>) -> Read<Option<&'a [u8]>> {
    Ok(if reader.null()? {
        None
    } else {
        Some(reader.value()?)
    })
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

    /// What metering reads of a chunk, worked out from `serde_json::Value` instead.
    fn read_through_value(json: &[u8]) -> (String, bool, bool, Option<TokenCounts>) {
        let value: serde_json::Value = serde_json::from_slice(json).unwrap();
        let choices = value["choices"].as_array().cloned().unwrap_or_default();
        let mut text = String::new();
        let mut finished = false;
        let mut choice_usage = None;
        for choice in &choices {
            text.extend(choice["text"].as_str());
            for message in [&choice["delta"], &choice["message"]] {
                text.extend(message["content"].as_str());
                text.extend(message["reasoning_content"].as_str());
                if !message["tool_calls"].is_null() {
                    text.push_str(&message["tool_calls"].to_string());
                }
            }
            finished |= !choice["finish_reason"].is_null();
            let usage = serde_json::from_value::<WireUsage>(choice["usage"].clone());
            choice_usage = choice_usage.or(usage.ok().and_then(|u| u.counts()));
        }
        let usage = serde_json::from_value::<Option<WireUsage>>(value["usage"].clone()).unwrap();
        let usage_only = value["choices"].as_array().is_some_and(Vec::is_empty) && usage.is_some();
        let counts = usage.and_then(|u| u.counts()).or(choice_usage);
        (text, finished, usage_only, counts)
    }

    #[test]
    fn reads_what_a_full_parse_reads_in_every_dialect() {
        let chunks: &[&[u8]] = &[
            br#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":"fp","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}"#,
            br#"{"id":"c","choices":[{"index":0,"delta":{"content":"caf\u00e9 \"quoted\"\n"},"finish_reason":null}]}"#,
            "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"déjà 你好 🙂\"}}]}".as_bytes(),
            br#"{"id":"c","choices":[{"index":0,"delta":{"reasoning_content":"think","content":null},"finish_reason":null}]}"#,
            br#"{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\": [1, 2.5e3, true]}"}}]},"finish_reason":"tool_calls"}]}"#,
            br#"{"id":"c","choices":[],"usage":{"prompt_tokens":18,"completion_tokens":20,"total_tokens":38,"prompt_tokens_details":{"cached_tokens":3},"completion_tokens_details":{"reasoning_tokens":0}}}"#,
            br#"{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop","usage":{"prompt_tokens":5,"completion_tokens":6,"total_tokens":11,"cached_tokens":2}}]}"#,
            br#"{"id":"c","choices":[],"usage":{"prompt_tokens":100,"completion_tokens":5,"total_tokens":105,"prompt_cache_hit_tokens":60,"prompt_cache_miss_tokens":40}}"#,
            br#"{"id":"c","object":"text_completion","choices":[{"text":"legacy","index":0,"logprobs":null,"finish_reason":"length"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#,
            br#"{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"whole answer"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5},"service_tier":"default"}"#,
            br#" { "id" : "c" , "choices" : [ { "index" : 0 , "delta" : { "content" : "spaced" } , "finish_reason" : null } ] } "#,
            br#"{"choices":[{"delta":{"content":"a"}},{"delta":{"content":"b"},"finish_reason":"stop"}]}"#,
        ];
        for json in chunks {
            let view = CompletionView::parse(json).unwrap();
            let mut text = String::new();
            view.for_each_text(|t| text.push_str(t));
            let read = (
                text,
                view.has_finish_reason(),
                view.is_usage_only(),
                view.usage_counts(),
            );
            assert_eq!(
                read,
                read_through_value(json),
                "{}",
                String::from_utf8_lossy(json)
            );
        }
    }

    #[test]
    fn a_chunk_that_is_not_json_or_not_a_completion_is_unreadable() {
        let unreadable: &[&[u8]] = &[
            b"",
            b"not json",
            br#"{"choices":[{"delta":{"content":"cut"#,
            br#"{"choices":[]}trailing"#,
            br#"{"choices":{}}"#,
            br#"{"choices":["a"]}"#,
            br#"{"created":"1"}"#,
            br#"{"created":1.5}"#,
            br#"{"id":7}"#,
            br#"{"choices":[{"delta":{"content":5}}]}"#,
            br#"{"choices":[{"finish_reason":true}]}"#,
            br#"{"usage":{"prompt_tokens":-1}}"#,
            br#"{"choices":[{"delta":{"content":"bad \x escape"}}]}"#,
            b"{\"choices\":[{\"delta\":{\"content\":\"raw\ncontrol\"}}]}",
            b"{\"id\":\"\xff\"}",
            b"[]",
        ];
        for json in unreadable {
            assert!(
                CompletionView::parse(json).is_err(),
                "{}",
                String::from_utf8_lossy(json)
            );
        }
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
