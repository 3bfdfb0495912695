//! Gemini `streamGenerateContent?alt=sse` → OpenAI `chat.completion.chunk` stream.
//!
//! Every Gemini `data:` event is a whole `GenerateContentResponse` holding the next
//! piece of the answer; there is no end marker, the stream simply ends.
//!
//! | Gemini | OpenAI data |
//! |---|---|
//! | the first event | first a chunk with `delta: {role: "assistant", content: ""}` |
//! | a `text` part / a `thought: true` text part | a `content` / `reasoning_content` delta |
//! | a `functionCall` part | a `tool_calls` delta with `index` k, `id` `call_<k>` (`call_<k>_ts_<signature>` when signed, see `gemini::signature`), the name and the whole arguments JSON |
//! | `finishReason` | a chunk with `delta: {}` and the mapped `finish_reason` (once) |
//! | `usageMetadata` | nothing; the latest counts are kept |
//! | `{"error": …}` | `{"error": {message, type: <status>, param: null, code: null}}`, and nothing after it |
//! | the end of the upstream stream, after a finish | a usage chunk (`choices: []`), then `[DONE]` |
//! | the end, without a finish | nothing: the relay ends the cut-off answer with an error |
//!
//! The usage chunk is always written; the relay withholds it from clients that did not
//! ask for usage, exactly as for an OpenAI upstream whose usage it requested.

use serde_json::{Value, json};

use super::TranslateError;
use super::response::{FALLBACK_ID, Piece, classify, finish_reason, usage_to_openai};
use super::signature::call_id;
use super::wire::{GenerateContentResponse, UsageMetadata};
use crate::protocol::sse::SseEvent;

/// The data of the event that ends an OpenAI stream.
pub const DONE: &str = "[DONE]";

#[derive(Debug)]
pub struct StreamTranslator {
    created: i64,
    id: Option<String>,
    model: String,
    usage: UsageMetadata,
    /// Tool calls sent so far (the next call's index).
    tool_calls: usize,
    started: bool,
    /// The finish reason sent, once the candidate finished.
    finish: Option<&'static str>,
    /// True after `[DONE]` or an error: the OpenAI stream is complete.
    finished: bool,
}

impl StreamTranslator {
    /// `created` is the Unix time every chunk reports (Gemini sends none); `model` is
    /// reported until the upstream names its `modelVersion`.
    pub fn new(created: i64, model: &str) -> StreamTranslator {
        StreamTranslator {
            created,
            id: None,
            model: model.to_string(),
            usage: UsageMetadata::default(),
            tool_calls: 0,
            started: false,
            finish: None,
            finished: false,
        }
    }

    /// Whether the OpenAI stream has ended (`[DONE]` or an error was produced).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The OpenAI `data:` payloads (chunk JSON) for one Gemini event.
    pub fn on_event(&mut self, event: &SseEvent) -> Result<Vec<String>, TranslateError> {
        let Some(data) = &event.data else {
            return Ok(Vec::new()); // a comment
        };
        if self.finished {
            return Ok(Vec::new());
        }
        let response: GenerateContentResponse = serde_json::from_slice(data).map_err(|e| {
            TranslateError::invalid(format!("upstream sent an unreadable stream event: {e}"))
        })?;
        if let Some(error) = response.error {
            self.finished = true;
            let body = json!({"error": {
                "message": error.message,
                "type": error.status.as_deref().unwrap_or("upstream_error"),
                "param": null,
                "code": null,
            }});
            return Ok(vec![body.to_string()]);
        }
        if self.id.is_none() {
            self.id = response.response_id;
        }
        if let Some(model) = response.model_version {
            self.model = model;
        }
        if let Some(usage) = response.usage_metadata {
            self.update_usage(&usage);
        }
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            out.push(self.chunk(json!({"role": "assistant", "content": ""}), None));
        }
        let Some(candidate) = response.candidates.into_iter().next() else {
            if response
                .prompt_feedback
                .and_then(|f| f.block_reason)
                .is_some()
                && self.finish.is_none()
            {
                // The prompt was blocked: there will be no candidate.
                self.finish = Some("content_filter");
                out.push(self.chunk(json!({}), self.finish));
            }
            return Ok(out);
        };
        for part in candidate.content.iter().flat_map(|c| c.parts.iter()) {
            let delta = match classify(part) {
                Piece::Text(text) if !text.is_empty() => json!({"content": text}),
                Piece::Thought(text) if !text.is_empty() => json!({"reasoning_content": text}),
                Piece::Call(name, arguments, signature) => {
                    let k = self.tool_calls;
                    self.tool_calls += 1;
                    json!({"tool_calls": [{"index": k, "id": call_id(k, signature), "type": "function",
                        "function": {"name": name, "arguments": arguments}}]})
                }
                _ => continue,
            };
            out.push(self.chunk(delta, None));
        }
        if self.finish.is_none()
            && let Some(reason) =
                finish_reason(candidate.finish_reason.as_deref(), self.tool_calls > 0)
        {
            self.finish = Some(reason);
            out.push(self.chunk(json!({}), Some(reason)));
        }
        Ok(out)
    }

    /// The payloads owed when the upstream stream ends: the usage chunk and `[DONE]` if
    /// the answer finished, nothing if it was cut off.
    pub fn finish(&mut self) -> Vec<String> {
        if self.finished || self.finish.is_none() {
            return Vec::new();
        }
        self.finished = true;
        vec![self.usage_chunk(), DONE.to_string()]
    }

    /// Later counts replace earlier ones; absent members keep what was known.
    fn update_usage(&mut self, later: &UsageMetadata) {
        let u = &mut self.usage;
        u.prompt_token_count = later.prompt_token_count.or(u.prompt_token_count);
        u.candidates_token_count = later.candidates_token_count.or(u.candidates_token_count);
        u.cached_content_token_count = later
            .cached_content_token_count
            .or(u.cached_content_token_count);
        u.thoughts_token_count = later.thoughts_token_count.or(u.thoughts_token_count);
        u.tool_use_prompt_token_count = later
            .tool_use_prompt_token_count
            .or(u.tool_use_prompt_token_count);
    }

    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> String {
        json!({
            "id": self.id.as_deref().unwrap_or(FALLBACK_ID),
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
        })
        .to_string()
    }

    fn usage_chunk(&self) -> String {
        json!({
            "id": self.id.as_deref().unwrap_or(FALLBACK_ID),
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": usage_to_openai(&self.usage),
        })
        .to_string()
    }
}
