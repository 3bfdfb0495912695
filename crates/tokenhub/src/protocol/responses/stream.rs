//! `chat.completion.chunk` data → Responses stream events, as OpenAI emits them.
//!
//! | chat data | Responses events |
//! |---|---|
//! | (start) | `response.created`, `response.in_progress` |
//! | `reasoning_content` / `reasoning` | a `reasoning` item: `output_item.added`, `reasoning_summary_part.added`, `reasoning_summary_text.delta`s |
//! | `content` | a `message` item: `output_item.added`, `content_part.added`, `output_text.delta`s |
//! | a new `tool_calls[i]` | a `function_call` item: `output_item.added`, `function_call_arguments.delta`s |
//! | `finish_reason` + the usage chunk, or `[DONE]` | every open item's `….done` events and `output_item.done`, then `response.completed` (or `response.incomplete`) with usage |
//! | an in-band error, a broken stream | `response.failed` with the error, and nothing after it |
//!
//! A reasoning or message item is closed when an item of another kind starts; function
//! calls stay open (their arguments may interleave) until the answer ends. Every event
//! carries `sequence_number`, from 0.

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::{Value, json};

use crate::protocol::openai::chunk::ChatData;

use super::response::{function_call_item, message_item, output_text_part, reasoning_item};
use super::{Frame, incomplete_reason, usage_from_chat};

/// One Responses SSE event: its `type` and its data (which repeats the type).
#[derive(Clone, Debug, PartialEq)]
pub struct ResponseEvent {
    pub data: Value,
}

impl ResponseEvent {
    pub fn kind(&self) -> &str {
        self.data["type"].as_str().unwrap_or_default()
    }

    pub fn to_sse(&self) -> Bytes {
        Bytes::from(format!("event: {}\ndata: {}\n\n", self.kind(), self.data))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Reasoning,
    Message,
    /// The chat tool call index.
    Call(u64),
}

#[derive(Debug)]
struct Item {
    kind: Kind,
    id: String,
    /// Text, summary or arguments gathered so far.
    text: String,
    call_id: String,
    name: String,
    done: bool,
}

#[derive(Debug)]
pub struct ResponsesStream {
    frame: Frame,
    sequence: u64,
    items: Vec<Item>,
    /// The open reasoning or message item (an index into `items`).
    open: Option<usize>,
    /// Chat tool call index → its item.
    calls: HashMap<u64, usize>,
    finish_reason: Option<String>,
    usage: Option<Value>,
    /// The final Response, once `response.completed` / `incomplete` / `failed` was produced.
    outcome: Option<Value>,
}

impl ResponsesStream {
    pub fn new(frame: Frame) -> ResponsesStream {
        ResponsesStream {
            frame,
            sequence: 0,
            items: Vec::new(),
            open: None,
            calls: HashMap::new(),
            finish_reason: None,
            usage: None,
            outcome: None,
        }
    }

    /// `response.created` and `response.in_progress`.
    pub fn start(&mut self) -> Vec<ResponseEvent> {
        let response = self.frame.response("in_progress", Vec::new(), Value::Null);
        vec![
            self.event("response.created", json!({"response": response})),
            self.event("response.in_progress", json!({"response": response})),
        ]
    }

    /// The final Response once the stream is over (completed, incomplete or failed).
    pub fn outcome(&self) -> Option<&Value> {
        self.outcome.as_ref()
    }

    /// The events for one chat `data:` payload (a chunk, or `[DONE]`).
    pub fn on_data(&mut self, data: &[u8]) -> Vec<ResponseEvent> {
        let mut out = Vec::new();
        if self.outcome.is_some() {
            return out;
        }
        let chunk = match ChatData::read(data) {
            ChatData::Done => {
                self.finish(&mut out);
                return out;
            }
            ChatData::Error(message) => return self.fail(&message),
            ChatData::Chunk(chunk) => chunk,
        };
        if let Some(choice) = chunk.pointer("/choices/0") {
            if let Some(delta) = choice.get("delta") {
                self.on_delta(delta, &mut out);
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                self.finish_reason = Some(reason.to_string());
            }
        }
        if let Some(usage) = chunk.get("usage").filter(|u| !u.is_null()) {
            self.usage = Some(usage.clone());
        }
        if self.finish_reason.is_some() && self.usage.is_some() {
            self.finish(&mut out);
        }
        out
    }

    /// The upstream stream ended after everything it sent was given to `on_data`.
    pub fn on_end(&mut self) -> Vec<ResponseEvent> {
        if self.outcome.is_some() {
            return Vec::new();
        }
        if self.finish_reason.is_some() {
            let mut out = Vec::new();
            self.finish(&mut out);
            return out;
        }
        self.fail("the upstream stream ended before the answer was complete")
    }

    /// The Response as far as it got, when the client went away before the stream's end
    /// (`None` once it ended): `incomplete`, with the text and reasoning produced so far.
    /// Function calls still open are left out: their arguments may be cut, and nobody can
    /// answer a call the client never saw completed.
    pub fn interrupted(&self) -> Option<Value> {
        if self.outcome.is_some() {
            return None;
        }
        let output = self
            .items
            .iter()
            .filter_map(|item| match item.kind {
                Kind::Reasoning => Some(reasoning_item(item.id.clone(), &item.text)),
                Kind::Message => Some(message_item(
                    item.id.clone(),
                    if item.done { "completed" } else { "incomplete" },
                    vec![output_text_part(&item.text)],
                )),
                Kind::Call(_) => item.done.then(|| self.item_value(item)),
            })
            .collect();
        let mut response = self.frame.response("incomplete", output, Value::Null);
        response["incomplete_details"] = json!({"reason": "client_disconnected"});
        Some(response)
    }

    /// The stream failed: `response.failed`, then nothing.
    pub fn fail(&mut self, message: &str) -> Vec<ResponseEvent> {
        if self.outcome.is_some() {
            return Vec::new();
        }
        let output = self
            .items
            .iter()
            .map(|item| self.item_value(item))
            .collect();
        let mut response = self.frame.response("failed", output, Value::Null);
        response["error"] = json!({"code": "server_error", "message": message});
        let event = self.event("response.failed", json!({"response": response}));
        self.outcome = Some(response);
        vec![event]
    }

    fn on_delta(&mut self, delta: &Value, out: &mut Vec<ResponseEvent>) {
        let reasoning = text(delta, "reasoning_content").or_else(|| text(delta, "reasoning"));
        if let Some(reasoning) = reasoning {
            let index = self.ensure_open(Kind::Reasoning, out);
            self.items[index].text.push_str(reasoning);
            let item_id = self.items[index].id.clone();
            out.push(self.event(
                "response.reasoning_summary_text.delta",
                json!({"item_id": item_id, "output_index": index, "summary_index": 0,
                    "delta": reasoning}),
            ));
        }
        if let Some(content) = text(delta, "content") {
            let index = self.ensure_open(Kind::Message, out);
            self.items[index].text.push_str(content);
            let item_id = self.items[index].id.clone();
            out.push(self.event(
                "response.output_text.delta",
                json!({"item_id": item_id, "output_index": index, "content_index": 0,
                    "delta": content, "logprobs": []}),
            ));
        }
        let calls = delta.get("tool_calls").and_then(Value::as_array);
        for (position, call) in calls.into_iter().flatten().enumerate() {
            self.on_tool_call(position as u64, call, out);
        }
    }

    fn on_tool_call(&mut self, position: u64, call: &Value, out: &mut Vec<ResponseEvent>) {
        let k = call
            .get("index")
            .and_then(Value::as_u64)
            .unwrap_or(position);
        let id = text(call, "id");
        let known = self.calls.get(&k).copied();
        let index = match (known, id) {
            (Some(index), None) => index,
            (Some(index), Some(id)) if self.items[index].call_id == id => index,
            _ => {
                self.close_open(out);
                let index = self.items.len();
                self.items.push(Item {
                    kind: Kind::Call(k),
                    id: self.frame.item_id("fc", index),
                    text: String::new(),
                    call_id: id.unwrap_or_default().to_string(),
                    name: call
                        .pointer("/function/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    done: false,
                });
                self.calls.insert(k, index);
                let item = self.item_value(&self.items[index]);
                out.push(self.event(
                    "response.output_item.added",
                    json!({"output_index": index, "item": item}),
                ));
                index
            }
        };
        let arguments = call.pointer("/function/arguments").and_then(Value::as_str);
        if let Some(arguments) = arguments.filter(|a| !a.is_empty()) {
            self.items[index].text.push_str(arguments);
            let item_id = self.items[index].id.clone();
            out.push(self.event(
                "response.function_call_arguments.delta",
                json!({"item_id": item_id, "output_index": index, "delta": arguments}),
            ));
        }
    }

    /// The open item of this kind, opening it (and closing another) if needed.
    fn ensure_open(&mut self, kind: Kind, out: &mut Vec<ResponseEvent>) -> usize {
        if let Some(index) = self.open
            && self.items[index].kind == kind
        {
            return index;
        }
        self.close_open(out);
        let index = self.items.len();
        let prefix = if kind == Kind::Reasoning { "rs" } else { "msg" };
        self.items.push(Item {
            kind,
            id: self.frame.item_id(prefix, index),
            text: String::new(),
            call_id: String::new(),
            name: String::new(),
            done: false,
        });
        self.open = Some(index);
        let item = self.item_value(&self.items[index]);
        let item_id = self.items[index].id.clone();
        out.push(self.event(
            "response.output_item.added",
            json!({"output_index": index, "item": item}),
        ));
        if kind == Kind::Reasoning {
            out.push(self.event(
                "response.reasoning_summary_part.added",
                json!({"item_id": item_id, "output_index": index, "summary_index": 0,
                    "part": {"type": "summary_text", "text": ""}}),
            ));
        } else {
            out.push(self.event(
                "response.content_part.added",
                json!({"item_id": item_id, "output_index": index, "content_index": 0,
                    "part": output_text_part("")}),
            ));
        }
        index
    }

    fn close_open(&mut self, out: &mut Vec<ResponseEvent>) {
        if let Some(index) = self.open.take() {
            self.close(index, out);
        }
    }

    /// An item's `….done` events and its `output_item.done`.
    fn close(&mut self, index: usize, out: &mut Vec<ResponseEvent>) {
        if self.items[index].done {
            return;
        }
        self.items[index].done = true;
        let item = &self.items[index];
        let (item_id, text) = (item.id.clone(), item.text.clone());
        match item.kind {
            Kind::Reasoning => {
                out.push(self.event(
                    "response.reasoning_summary_text.done",
                    json!({"item_id": item_id, "output_index": index, "summary_index": 0,
                        "text": text}),
                ));
                out.push(self.event(
                    "response.reasoning_summary_part.done",
                    json!({"item_id": item_id, "output_index": index, "summary_index": 0,
                        "part": {"type": "summary_text", "text": text}}),
                ));
            }
            Kind::Message => {
                out.push(self.event(
                    "response.output_text.done",
                    json!({"item_id": item_id, "output_index": index, "content_index": 0,
                        "text": text, "logprobs": []}),
                ));
                out.push(self.event(
                    "response.content_part.done",
                    json!({"item_id": item_id, "output_index": index, "content_index": 0,
                        "part": output_text_part(&text)}),
                ));
            }
            Kind::Call(_) => {
                let name = self.items[index].name.clone();
                out.push(self.event(
                    "response.function_call_arguments.done",
                    json!({"item_id": item_id, "output_index": index, "name": name,
                        "arguments": text}),
                ));
            }
        }
        let item = self.item_value(&self.items[index]);
        out.push(self.event(
            "response.output_item.done",
            json!({"output_index": index, "item": item}),
        ));
    }

    /// Closes every item and produces `response.completed` (or `response.incomplete`).
    fn finish(&mut self, out: &mut Vec<ResponseEvent>) {
        if self.outcome.is_some() {
            return;
        }
        self.close_open(out);
        for index in 0..self.items.len() {
            self.close(index, out);
        }
        let output = self
            .items
            .iter()
            .map(|item| self.item_value(item))
            .collect();
        let mut response =
            self.frame
                .response("completed", output, usage_from_chat(self.usage.as_ref()));
        let reason = incomplete_reason(self.finish_reason.as_deref());
        let kind = match reason {
            Some(reason) => {
                response["status"] = json!("incomplete");
                response["incomplete_details"] = json!({"reason": reason});
                "response.incomplete"
            }
            None => "response.completed",
        };
        out.push(self.event(kind, json!({"response": response})));
        self.outcome = Some(response);
    }

    /// The item as `output_item.added` / `.done` and the final Response show it.
    fn item_value(&self, item: &Item) -> Value {
        let status = if item.done {
            "completed"
        } else {
            "in_progress"
        };
        match item.kind {
            Kind::Reasoning => {
                reasoning_item(item.id.clone(), if item.done { &item.text } else { "" })
            }
            Kind::Message => {
                let content = if item.done {
                    vec![output_text_part(&item.text)]
                } else {
                    Vec::new()
                };
                message_item(item.id.clone(), status, content)
            }
            Kind::Call(_) => function_call_item(
                item.id.clone(),
                status,
                &item.call_id,
                &item.name,
                if item.done { &item.text } else { "" },
            ),
        }
    }

    fn event(&mut self, kind: &str, mut data: Value) -> ResponseEvent {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        ResponseEvent { data }
    }
}

/// A non-empty string member.
fn text<'a>(value: &'a Value, name: &str) -> Option<&'a str> {
    value
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(delta: Value) -> Vec<u8> {
        json!({"choices": [{"index": 0, "delta": delta, "finish_reason": null}]})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn an_interrupted_stream_keeps_its_text_and_drops_open_calls() {
        let frame = Frame::new("resp_x".into(), 1, &json!({"model": "m"}));
        let mut stream = ResponsesStream::new(frame);
        stream.start();
        stream.on_data(&chunk(json!({"content": "Hel"})));
        stream.on_data(&chunk(json!({"content": "lo"})));
        stream.on_data(&chunk(json!({"tool_calls": [{"index": 0, "id": "c1",
            "function": {"name": "f", "arguments": "{\"a\":"}}]})));
        let response = stream.interrupted().expect("not ended");
        assert_eq!(response["status"], "incomplete");
        assert_eq!(
            response["incomplete_details"]["reason"],
            "client_disconnected"
        );
        let output = response["output"].as_array().unwrap();
        assert_eq!(output.len(), 1, "the open call is left out: {output:?}");
        assert_eq!(output[0]["content"][0]["text"], "Hello");

        stream.on_end();
        assert!(stream.interrupted().is_none(), "an ended stream is not cut");
    }
}
