//! Anthropic Messages stream → OpenAI `chat.completion.chunk` stream
//! (shared/docs/providers.md §3.8).
//!
//! | Anthropic event | OpenAI data |
//! |---|---|
//! | `message_start` | a chunk with `delta: {role: "assistant", content: ""}` |
//! | `content_block_start` text / thinking | nothing (or the block's initial text, if any) |
//! | `content_block_start` tool_use | a `tool_calls` delta with `index` k, `id`, `name`, `arguments: ""`; k counts tool blocks from 0, whatever the block's own index; the id carries the thinking blocks since the last tool call (`carry`) |
//! | `text_delta` / `thinking_delta` | `content` / `reasoning_content` delta |
//! | `input_json_delta` | a `tool_calls` delta with index k and the `arguments` piece |
//! | `signature_delta`, `content_block_start` redacted_thinking | nothing (kept for the next tool call's id) |
//! | `content_block_stop`, `ping` | nothing |
//! | `message_delta` | a chunk with `delta: {}` and the mapped `finish_reason` |
//! | `message_stop` | a usage chunk (`choices: []`, whole-request usage), then `[DONE]` |
//! | `error` | `{"error": {message, type, param: null, code: null}}`, and nothing after it |
//!
//! The usage chunk is always written; the relay withholds it from clients that did not
//! ask for usage, exactly as for an OpenAI upstream whose usage it requested.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::TranslateError;
use super::carry;
use super::response::{finish_reason, usage_to_openai};
use super::wire::{ContentBlock, Delta, StreamEvent, Usage};
use crate::protocol::sse::SseEvent;

/// The data of the event that ends an OpenAI stream.
pub const DONE: &str = "[DONE]";

#[derive(Debug)]
pub struct StreamTranslator {
    created: i64,
    id: String,
    model: String,
    usage: Usage,
    /// Anthropic block index → OpenAI tool call index.
    tool_calls: HashMap<u64, usize>,
    /// Thinking blocks since the last tool call, as they are being streamed, by Anthropic
    /// block index; the next tool call's id carries them.
    thinking: Vec<(u64, ContentBlock)>,
    /// True after `message_stop` or `error`: the OpenAI stream is complete.
    finished: bool,
    /// The forced tool whose call is the answer (`structured`): its arguments stream as
    /// `content`, and the answer finishes with `stop`.
    answer_tool: Option<String>,
    /// The Anthropic block index of the call to `answer_tool`, once it started.
    answer_block: Option<u64>,
}

impl StreamTranslator {
    /// `created` is the Unix time every chunk reports (Anthropic sends none).
    pub fn new(created: i64) -> StreamTranslator {
        StreamTranslator {
            created,
            id: String::new(),
            model: String::new(),
            usage: Usage::default(),
            tool_calls: HashMap::new(),
            thinking: Vec::new(),
            finished: false,
            answer_tool: None,
            answer_block: None,
        }
    }

    /// Streams the call to `tool` as the answer's content (see `structured`).
    pub fn answering_with_tool(mut self, tool: Option<String>) -> StreamTranslator {
        self.answer_tool = tool;
        self
    }

    /// Whether the OpenAI stream has ended (`[DONE]` or an error was produced).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The OpenAI `data:` payloads (chunk JSON, or `[DONE]`) for one Anthropic event.
    pub fn on_event(&mut self, event: &SseEvent) -> Result<Vec<String>, TranslateError> {
        let Some(data) = &event.data else {
            return Ok(Vec::new()); // a comment
        };
        if self.finished {
            return Ok(Vec::new());
        }
        let event: StreamEvent = serde_json::from_slice(data).map_err(|e| {
            TranslateError::invalid(format!("upstream sent an unreadable stream event: {e}"))
        })?;
        Ok(match event {
            StreamEvent::MessageStart { message } => {
                self.id = message.id;
                self.model = message.model;
                self.usage.update(&message.usage);
                vec![self.chunk(json!({"role": "assistant", "content": ""}), None)]
            }
            StreamEvent::ContentBlockStart {
                index,
                content_block,
            } => self.block_start(index, content_block),
            StreamEvent::ContentBlockDelta { index, delta } => self.block_delta(index, delta),
            StreamEvent::MessageDelta { delta, usage } => {
                self.usage.update(&usage);
                let reason = match finish_reason(delta.stop_reason.as_deref()) {
                    "tool_calls" if self.answer_block.is_some() => "stop",
                    reason => reason,
                };
                vec![self.chunk(json!({}), Some(reason))]
            }
            StreamEvent::MessageStop => {
                self.finished = true;
                vec![self.usage_chunk(), DONE.to_string()]
            }
            StreamEvent::Error { error } => {
                self.finished = true;
                let body = json!({"error": {
                    "message": error.message, "type": error.kind, "param": null, "code": null,
                }});
                vec![body.to_string()]
            }
            StreamEvent::ContentBlockStop { .. } | StreamEvent::Ping | StreamEvent::Other => {
                Vec::new()
            }
        })
    }

    fn block_start(&mut self, index: u64, block: ContentBlock) -> Vec<String> {
        match block {
            ContentBlock::ToolUse { name, .. } if self.answer_tool.as_ref() == Some(&name) => {
                self.answer_block = Some(index);
                Vec::new()
            }
            ContentBlock::ToolUse { id, name, .. } => {
                let k = self.tool_calls.len();
                self.tool_calls.insert(index, k);
                let thinking: Vec<ContentBlock> =
                    self.thinking.drain(..).map(|(_, block)| block).collect();
                let id = carry::tool_call_id(&id, &thinking);
                let call = json!({"index": k, "id": id, "type": "function",
                    "function": {"name": name, "arguments": ""}});
                vec![self.chunk(json!({"tool_calls": [call]}), None)]
            }
            ContentBlock::Text { text, .. } if !text.is_empty() => {
                vec![self.chunk(json!({"content": text}), None)]
            }
            ContentBlock::Thinking { ref thinking, .. } => {
                let out = if thinking.is_empty() {
                    Vec::new()
                } else {
                    vec![self.chunk(json!({"reasoning_content": thinking}), None)]
                };
                self.thinking.push((index, block));
                out
            }
            ContentBlock::RedactedThinking { .. } => {
                self.thinking.push((index, block));
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn block_delta(&mut self, index: u64, delta: Delta) -> Vec<String> {
        let delta = match delta {
            Delta::TextDelta { text } if !text.is_empty() => json!({"content": text}),
            Delta::ThinkingDelta { thinking } if !thinking.is_empty() => {
                if let Some(ContentBlock::Thinking { thinking: kept, .. }) =
                    self.open_thinking(index)
                {
                    kept.push_str(&thinking);
                }
                json!({"reasoning_content": thinking})
            }
            Delta::SignatureDelta { signature } => {
                if let Some(ContentBlock::Thinking {
                    signature: kept, ..
                }) = self.open_thinking(index)
                {
                    kept.get_or_insert_default().push_str(&signature);
                }
                return Vec::new();
            }
            Delta::InputJsonDelta { partial_json }
                if !partial_json.is_empty() && self.answer_block == Some(index) =>
            {
                json!({"content": partial_json})
            }
            Delta::InputJsonDelta { partial_json } if !partial_json.is_empty() => {
                let Some(&k) = self.tool_calls.get(&index) else {
                    return Vec::new(); // arguments of a block that was never opened
                };
                json!({"tool_calls": [{"index": k, "function": {"arguments": partial_json}}]})
            }
            _ => return Vec::new(),
        };
        vec![self.chunk(delta, None)]
    }

    /// The thinking block being streamed at Anthropic block `index`, if any.
    fn open_thinking(&mut self, index: u64) -> Option<&mut ContentBlock> {
        self.thinking
            .iter_mut()
            .find(|(i, _)| *i == index)
            .map(|(_, block)| block)
    }

    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> String {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
        })
        .to_string()
    }

    fn usage_chunk(&self) -> String {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": usage_to_openai(&self.usage),
        })
        .to_string()
    }
}
