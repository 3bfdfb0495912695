//! `POST /v1/responses`: OpenAI's Responses API, as a channel that serves it natively
//! sees it. The reply is [`REPLY_PREFIX`] and the text of the last input (or the `reply`
//! knob); usage counts words: `input_tokens` over `instructions` and the input texts
//! (`cached_tokens` from the knob, inside it), `output_tokens` over the reply plus the
//! `reasoning` knob's words (`reasoning_tokens`). A hosted `web_search` tool adds a
//! `web_search_call` item, as OpenAI runs it. `previous_response_id` is echoed. The
//! `usage_override` knob replaces the usage object verbatim, and `usage: false` leaves it
//! out (a buggy or hostile upstream's report); `event_members` overwrites members of
//! streamed events by type (a buggy upstream's events).
//! Streamed, the events are OpenAI's, each `event:` + `data:` with `sequence_number`.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::error::bad_request;
use crate::knobs::Knobs;
use crate::state::MockState;
use crate::tokens::{REPLY_PREFIX, split_reply, word_count};
use crate::{preflight, sse};

pub async fn create(State(state): State<MockState>, body: Bytes) -> Response {
    let (request, knobs) = match preflight::parse(&state, &body) {
        Ok(parsed) => parsed,
        Err(rejection) => return rejection.into_response(),
    };
    if !request.get("model").is_some_and(Value::is_string) {
        return bad_request("you must provide a model parameter", Some("model"));
    }
    if !request
        .get("input")
        .is_some_and(|i| i.is_string() || i.is_array())
    {
        return bad_request("'input' must be a string or an array", Some("input"));
    }
    if request
        .get("stream_options")
        .is_some_and(|o| o.get("include_usage").is_some())
    {
        return bad_request(
            "Unknown parameter: 'stream_options.include_usage'.",
            Some("stream_options.include_usage"),
        );
    }
    if let Some(response) = preflight::run(&state, &knobs).await {
        return response;
    }
    let n = state.next_id();
    let reply = knobs
        .reply
        .clone()
        .unwrap_or_else(|| format!("{REPLY_PREFIX}{}", last_input_text(&request)));
    let response = Answer {
        id: format!("resp_mock_{n}"),
        item: format!("msg_mock_{n}"),
        reply,
    };
    if request.get("stream").and_then(Value::as_bool) == Some(true) {
        sse::play(response.events(&request, &knobs), &knobs)
    } else {
        Json(response.object(&request, &knobs, "completed", true)).into_response()
    }
}

struct Answer {
    id: String,
    item: String,
    reply: String,
}

impl Answer {
    /// The Response object; `done` = with its output and usage.
    fn object(&self, request: &Value, knobs: &Knobs, status: &str, done: bool) -> Value {
        let mut output = Vec::new();
        if done {
            if uses_web_search(request) {
                output.push(
                    json!({"type": "web_search_call", "id": format!("ws_{}", self.item),
                    "status": "completed", "action": {"type": "search", "query": "mock"}}),
                );
            }
            output.push(self.message(true));
        }
        let reasoning = knobs.reasoning.as_deref().map_or(0, word_count);
        let input = input_tokens(request);
        let output_tokens = word_count(&self.reply).max(1) + reasoning;
        let usage = match &knobs.usage_override {
            Some(reported) if done => reported.clone(),
            _ if done => json!({
                "input_tokens": input,
                "input_tokens_details": {"cached_tokens": knobs.cached_tokens.min(input)},
                "output_tokens": output_tokens,
                "output_tokens_details": {"reasoning_tokens": reasoning},
                "total_tokens": input + output_tokens,
            }),
            _ => Value::Null,
        };
        let mut object = json!({
            "id": self.id,
            "object": "response",
            "created_at": SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            "status": status,
            "error": null,
            "model": request["model"],
            "output": output,
            "previous_response_id": request.get("previous_response_id").cloned().unwrap_or(Value::Null),
            "store": request.get("store").cloned().unwrap_or(Value::Bool(true)),
            "usage": usage,
        });
        if let Some(members) = object.as_object_mut().filter(|_| done && !knobs.usage) {
            members.remove("usage");
        }
        object
    }

    fn message(&self, done: bool) -> Value {
        let content = if done {
            json!([{"type": "output_text", "text": self.reply, "annotations": []}])
        } else {
            json!([])
        };
        json!({"type": "message", "id": self.item, "status": if done {"completed"} else {"in_progress"},
            "role": "assistant", "content": content})
    }

    fn events(&self, request: &Value, knobs: &Knobs) -> Vec<Option<String>> {
        let mut sequence = 0u64;
        let mut out = Vec::new();
        let mut emit = |kind: &str, mut data: Value| {
            data["type"] = json!(kind);
            data["sequence_number"] = json!(sequence);
            sequence += 1;
            if let Some(members) = knobs
                .event_members
                .as_ref()
                .and_then(|m| m[kind].as_object())
            {
                for (name, value) in members {
                    data[name] = value.clone();
                }
            }
            out.push(Some(format!("event: {kind}\ndata: {data}")));
        };
        let pending = self.object(request, knobs, "in_progress", false);
        emit("response.created", json!({"response": pending}));
        emit("response.in_progress", json!({"response": pending}));
        let index = usize::from(uses_web_search(request));
        emit(
            "response.output_item.added",
            json!({"output_index": index, "item": self.message(false)}),
        );
        let part = |text: &str| json!({"type": "output_text", "text": text, "annotations": []});
        let at = json!({"item_id": self.item, "output_index": index, "content_index": 0});
        let with = |extra: Value| {
            let mut v = at.clone();
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            v
        };
        emit(
            "response.content_part.added",
            with(json!({"part": part("")})),
        );
        for piece in split_reply(&self.reply, knobs.chunks) {
            emit(
                "response.output_text.delta",
                with(json!({"delta": piece, "logprobs": []})),
            );
        }
        emit(
            "response.output_text.done",
            with(json!({"text": self.reply, "logprobs": []})),
        );
        emit(
            "response.content_part.done",
            with(json!({"part": part(&self.reply)})),
        );
        emit(
            "response.output_item.done",
            json!({"output_index": index, "item": self.message(true)}),
        );
        if knobs.mid_stream_error {
            emit(
                "response.failed",
                json!({"response": {"id": self.id, "object": "response", "status": "failed",
                "error": {"code": "server_error", "message": knobs.error_message.clone().unwrap_or_else(|| "mock failure".into())}}}),
            );
        } else {
            emit(
                "response.completed",
                json!({"response": self.object(request, knobs, "completed", true)}),
            );
        }
        if let Some(after) = knobs.drop_after_chunks {
            out.truncate(after);
            out.push(None);
        }
        out
    }
}

fn uses_web_search(request: &Value) -> bool {
    request["tools"].as_array().into_iter().flatten().any(|t| {
        t["type"]
            .as_str()
            .is_some_and(|kind| kind.starts_with("web_search"))
    })
}

/// Words of `instructions` and of every text in `input`.
fn input_tokens(request: &Value) -> u64 {
    let mut texts = Vec::new();
    collect_texts(&request["instructions"], &mut texts);
    collect_texts(&request["input"], &mut texts);
    texts.iter().map(|t| word_count(t)).sum()
}

fn collect_texts<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(text) => out.push(text),
        Value::Array(items) => items.iter().for_each(|item| collect_texts(item, out)),
        Value::Object(members) => ["text", "content", "output"]
            .iter()
            .filter_map(|name| members.get(*name))
            .for_each(|member| collect_texts(member, out)),
        _ => {}
    }
}

/// The text of the last input item (or the input string).
fn last_input_text(request: &Value) -> String {
    let last = match &request["input"] {
        Value::Array(items) => items.last().cloned().unwrap_or(Value::Null),
        other => other.clone(),
    };
    let mut texts = Vec::new();
    collect_texts(&last, &mut texts);
    texts.concat()
}
