//! OpenAI `chat.completion.chunk` stream → Anthropic Messages stream events.
//!
//! | OpenAI data | Anthropic events |
//! |---|---|
//! | the first chunk | `message_start` (id, model; `input_tokens` as counted before the answer, see `with_input_tokens`: the real counts come last) |
//! | `reasoning_content` / `reasoning` | a `thinking` block, `thinking_delta`s |
//! | `content` | a `text` block, `text_delta`s |
//! | a new `tool_calls[i]` (unseen index, or a new id) | a `tool_use` block `{id, name, input: {}}` |
//! | `tool_calls[i].function.arguments` | `input_json_delta` on that call's block |
//! | `finish_reason` | `content_block_stop` of the open block; the stop reason is kept |
//! | the usage chunk, or `[DONE]` | `message_delta {stop_reason, usage}` + `message_stop` |
//! | an in-band `{"error": …}` | `error` (`api_error`), and nothing after it |
//!
//! A block is closed (`content_block_stop`) when a block of another kind or another tool
//! call starts, so indices count every block from 0 in order. `message_delta` is held
//! until the usage chunk, which the inbound request always asks for, because Anthropic
//! clients read the final usage from it. Arguments for a tool call whose block was
//! already closed cannot be placed in Anthropic's sequential blocks and are dropped;
//! upstreams send each call's pieces together.

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::{Value, json};

use crate::protocol::openai::chunk::ChatData;

use super::response::{message_id, stop_reason};
use super::{error_body, usage_from_openai};

/// One Anthropic SSE event: `event: <name>` and its `data` JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct AnthropicEvent {
    pub name: &'static str,
    pub data: Value,
}

impl AnthropicEvent {
    pub fn to_sse(&self) -> Bytes {
        Bytes::from(format!("event: {}\ndata: {}\n\n", self.name, self.data))
    }

    pub fn error(message: &str) -> AnthropicEvent {
        AnthropicEvent {
            name: "error",
            data: error_body("api_error", message),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Block {
    Text,
    Thinking,
    /// The OpenAI tool call index.
    Tool(u64),
}

#[derive(Debug, Default)]
pub struct InboundStream {
    started: bool,
    /// The open block and its Anthropic index.
    open: Option<(Block, usize)>,
    next_index: usize,
    /// OpenAI tool call index → the id its block was opened with.
    tool_ids: HashMap<u64, String>,
    stop_reason: Option<&'static str>,
    usage: Option<Value>,
    finished: bool,
    /// The prompt's tokens as counted before the answer, for `message_start` (the real
    /// counts come in `message_delta`, as Anthropic's own do).
    input_tokens: u64,
}

impl InboundStream {
    pub fn new() -> InboundStream {
        InboundStream::default()
    }

    /// `message_start` reports `input_tokens` (older Anthropic SDKs read them there).
    pub fn with_input_tokens(mut self, input_tokens: u64) -> InboundStream {
        self.input_tokens = input_tokens;
        self
    }

    /// True once `message_stop` or `error` was produced: the Anthropic stream is complete.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The events for one OpenAI `data:` payload (a chunk, or `[DONE]`).
    pub fn on_data(&mut self, data: &[u8]) -> Vec<AnthropicEvent> {
        let mut out = Vec::new();
        if self.finished {
            return out;
        }
        let chunk = match ChatData::read(data) {
            ChatData::Done => {
                self.end_message(&mut out);
                return out;
            }
            ChatData::Error(message) => return self.fail(&message),
            ChatData::Chunk(chunk) => chunk,
        };
        if !self.started {
            self.started = true;
            out.push(message_start(&chunk, self.input_tokens));
        }
        if let Some(choice) = chunk.pointer("/choices/0") {
            if let Some(delta) = choice.get("delta") {
                self.on_delta(delta, &mut out);
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                self.close_block(&mut out);
                self.stop_reason = Some(stop_reason(Some(reason)));
            }
        }
        if let Some(usage) = chunk.get("usage").filter(|u| !u.is_null()) {
            self.usage = Some(usage.clone());
        }
        if self.stop_reason.is_some() && self.usage.is_some() {
            self.end_message(&mut out);
        }
        out
    }

    /// The upstream stream ended (or broke) after everything it sent was given to `on_data`.
    pub fn on_end(&mut self) -> Vec<AnthropicEvent> {
        if self.finished {
            return Vec::new();
        }
        if self.stop_reason.is_some() {
            let mut out = Vec::new();
            self.end_message(&mut out);
            return out;
        }
        self.fail("the upstream stream ended before the answer was complete")
    }

    /// The stream failed: one `error` event, then nothing.
    pub fn fail(&mut self, message: &str) -> Vec<AnthropicEvent> {
        if self.finished {
            return Vec::new();
        }
        self.finished = true;
        vec![AnthropicEvent::error(message)]
    }

    fn on_delta(&mut self, delta: &Value, out: &mut Vec<AnthropicEvent>) {
        let reasoning = text(delta, "reasoning_content").or_else(|| text(delta, "reasoning"));
        if let Some(thinking) = reasoning {
            let index = self.ensure_block(
                Block::Thinking,
                out,
                || json!({"type": "thinking", "thinking": "", "signature": ""}),
            );
            out.push(block_delta(
                index,
                json!({"type": "thinking_delta", "thinking": thinking}),
            ));
        }
        if let Some(content) = text(delta, "content") {
            let index = self.ensure_block(Block::Text, out, || json!({"type": "text", "text": ""}));
            out.push(block_delta(
                index,
                json!({"type": "text_delta", "text": content}),
            ));
        }
        let calls = delta.get("tool_calls").and_then(Value::as_array);
        for (position, call) in calls.into_iter().flatten().enumerate() {
            self.on_tool_call(position as u64, call, out);
        }
    }

    fn on_tool_call(&mut self, position: u64, call: &Value, out: &mut Vec<AnthropicEvent>) {
        let k = call
            .get("index")
            .and_then(Value::as_u64)
            .unwrap_or(position);
        let id = text(call, "id");
        let known = self.tool_ids.get(&k);
        let is_new = match (known, id) {
            (None, _) => true,
            (Some(known), Some(id)) => known != id,
            (Some(_), None) => false,
        };
        if is_new {
            let id = id.unwrap_or_default().to_string();
            let name = call
                .pointer("/function/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            self.close_block(out);
            let index = self.next_index;
            self.next_index += 1;
            self.open = Some((Block::Tool(k), index));
            out.push(AnthropicEvent {
                name: "content_block_start",
                data: json!({"type": "content_block_start", "index": index,
                    "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
            });
            self.tool_ids.insert(k, id);
        }
        let arguments = call.pointer("/function/arguments").and_then(Value::as_str);
        if let (Some(arguments), Some((Block::Tool(open), index))) =
            (arguments.filter(|a| !a.is_empty()), self.open)
            && open == k
        {
            out.push(block_delta(
                index,
                json!({"type": "input_json_delta", "partial_json": arguments}),
            ));
        }
    }

    /// The index of the open block of this kind, opening it (and closing another) if needed.
    fn ensure_block(
        &mut self,
        block: Block,
        out: &mut Vec<AnthropicEvent>,
        content_block: impl FnOnce() -> Value,
    ) -> usize {
        if let Some((open, index)) = self.open
            && open == block
        {
            return index;
        }
        self.close_block(out);
        let index = self.next_index;
        self.next_index += 1;
        self.open = Some((block, index));
        out.push(AnthropicEvent {
            name: "content_block_start",
            data: json!({"type": "content_block_start", "index": index, "content_block": content_block()}),
        });
        index
    }

    fn close_block(&mut self, out: &mut Vec<AnthropicEvent>) {
        if let Some((_, index)) = self.open.take() {
            out.push(AnthropicEvent {
                name: "content_block_stop",
                data: json!({"type": "content_block_stop", "index": index}),
            });
        }
    }

    /// The held `message_delta` and `message_stop`.
    fn end_message(&mut self, out: &mut Vec<AnthropicEvent>) {
        if self.finished {
            return;
        }
        if !self.started {
            self.started = true;
            out.push(message_start(&Value::Null, self.input_tokens));
        }
        self.close_block(out);
        self.finished = true;
        out.push(AnthropicEvent {
            name: "message_delta",
            data: json!({
                "type": "message_delta",
                "delta": {"stop_reason": self.stop_reason.unwrap_or("end_turn"), "stop_sequence": null},
                "usage": usage_from_openai(self.usage.as_ref()),
            }),
        });
        out.push(AnthropicEvent {
            name: "message_stop",
            data: json!({"type": "message_stop"}),
        });
    }
}

fn message_start(chunk: &Value, input_tokens: u64) -> AnthropicEvent {
    let id = chunk.get("id").and_then(Value::as_str).unwrap_or_default();
    let model = chunk
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default();
    AnthropicEvent {
        name: "message_start",
        data: json!({"type": "message_start", "message": {
            "id": message_id(id), "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": input_tokens, "output_tokens": 0},
        }}),
    }
}

fn block_delta(index: usize, delta: Value) -> AnthropicEvent {
    AnthropicEvent {
        name: "content_block_delta",
        data: json!({"type": "content_block_delta", "index": index, "delta": delta}),
    }
}

/// A non-empty string member.
fn text<'a>(value: &'a Value, name: &str) -> Option<&'a str> {
    value
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}
