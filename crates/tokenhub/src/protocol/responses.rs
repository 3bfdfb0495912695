//! OpenAI's Responses API (`/v1/responses`) served over the chat pipeline, whatever the
//! upstream: the request becomes a chat request, the chat answer becomes a Response.
//!
//! - `request`: a Responses request (+ the stored conversation it continues) → a chat
//!   request body, and this turn's input as chat messages (what a later turn replays).
//! - `response`: a `chat.completion` body → a Response object, and the assistant message
//!   that continues the conversation.
//! - `stream`: `chat.completion.chunk` data → Responses stream events, numbered.
//! - `items`: a turn as stored (its input as Responses items), and the conversation
//!   rebuilt from a chain of stored turns.
//! - `native`: what the relay meters in a native channel's Responses answer, which
//!   passes through unchanged.
//! - `usage`: chat usage → the Responses usage object (one function, so it is one place
//!   to extend).
//!
//! Pure functions of their inputs (ids and the clock come in a `Frame`), golden-tested in
//! `tests/it/responses_golden.rs`.

pub mod items;
pub mod native;
pub mod request;
pub mod response;
pub mod stream;
pub mod usage;

pub use request::{Translation, request_to_chat};
pub use response::{assistant_message, response_from_chat};
pub use stream::{ResponseEvent, ResponsesStream};
pub use usage::usage_from_chat;

use serde_json::{Map, Value, json};

/// A request the gateway cannot serve as asked: a 400 with OpenAI's `param`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TranslateError {
    pub message: String,
    pub param: Option<String>,
}

impl TranslateError {
    pub fn new(message: impl Into<String>, param: &str) -> TranslateError {
        TranslateError {
            message: message.into(),
            param: Some(param.to_string()),
        }
    }
}

/// What a Response object says about itself besides its output: its id, time, model and
/// the request's settings it echoes back (OpenAI returns them on every Response).
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    pub id: String,
    pub created_at: i64,
    pub model: String,
    /// The echoed request members, in the order OpenAI writes them.
    pub echo: Map<String, Value>,
}

impl Frame {
    /// The frame of a response to `request` (a parsed Responses request body).
    pub fn new(id: String, created_at: i64, request: &Value) -> Frame {
        let member = |name: &str, default: Value| {
            request
                .get(name)
                .filter(|v| !v.is_null())
                .cloned()
                .unwrap_or(default)
        };
        let mut echo = Map::new();
        echo.insert("instructions".into(), member("instructions", Value::Null));
        echo.insert(
            "max_output_tokens".into(),
            member("max_output_tokens", Value::Null),
        );
        echo.insert("metadata".into(), member("metadata", json!({})));
        echo.insert(
            "parallel_tool_calls".into(),
            member("parallel_tool_calls", json!(true)),
        );
        echo.insert(
            "previous_response_id".into(),
            member("previous_response_id", Value::Null),
        );
        let reasoning = request.get("reasoning");
        echo.insert(
            "reasoning".into(),
            json!({
                "effort": reasoning.and_then(|r| r.get("effort")).cloned().unwrap_or(Value::Null),
                "summary": reasoning.and_then(|r| r.get("summary")).cloned().unwrap_or(Value::Null),
            }),
        );
        echo.insert("store".into(), json!(stores(request)));
        echo.insert("temperature".into(), member("temperature", json!(1.0)));
        let format = request
            .pointer("/text/format")
            .cloned()
            .unwrap_or_else(|| json!({"type": "text"}));
        echo.insert("text".into(), json!({"format": format}));
        echo.insert("tool_choice".into(), member("tool_choice", json!("auto")));
        echo.insert("tools".into(), member("tools", json!([])));
        echo.insert("top_p".into(), member("top_p", json!(1.0)));
        echo.insert("truncation".into(), member("truncation", json!("disabled")));
        echo.insert("user".into(), member("user", Value::Null));
        Frame {
            id,
            created_at,
            model: request
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            echo,
        }
    }

    /// The Response object in a given state with the given output.
    pub fn response(&self, status: &str, output: Vec<Value>, usage: Value) -> Value {
        let mut object = Map::new();
        object.insert("id".into(), json!(self.id));
        object.insert("object".into(), json!("response"));
        object.insert("created_at".into(), json!(self.created_at));
        object.insert("status".into(), json!(status));
        object.insert("background".into(), json!(false));
        object.insert("error".into(), Value::Null);
        object.insert("incomplete_details".into(), Value::Null);
        object.insert("model".into(), json!(self.model));
        object.insert("output".into(), Value::Array(output));
        object.extend(self.echo.clone());
        object.insert("usage".into(), usage);
        Value::Object(object)
    }

    /// The id of the `n`th output item of a kind (`msg`, `fc`, `rs`): unique per response,
    /// derived from its id so the translation stays pure.
    pub fn item_id(&self, prefix: &str, n: usize) -> String {
        let base = self.id.strip_prefix("resp_").unwrap_or(&self.id);
        format!("{prefix}_{base}{n:02}")
    }
}

/// `store`: OpenAI keeps a response unless told not to.
pub fn stores(request: &Value) -> bool {
    request
        .get("store")
        .and_then(Value::as_bool)
        .unwrap_or(true)
}

/// `previous_response_id`, when the request continues a stored response.
pub fn previous_response_id(request: &Value) -> Option<&str> {
    request
        .get("previous_response_id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
}

/// The incomplete reason a chat `finish_reason` stands for, if the answer was cut short.
pub fn incomplete_reason(finish_reason: Option<&str>) -> Option<&'static str> {
    match finish_reason {
        Some("length") => Some("max_output_tokens"),
        Some("content_filter") => Some("content_filter"),
        _ => None,
    }
}

/// Marks a Response incomplete (status and `incomplete_details`) when the answer was cut.
pub fn mark_incomplete(response: &mut Value, finish_reason: Option<&str>) {
    if let Some(reason) = incomplete_reason(finish_reason) {
        response["status"] = json!("incomplete");
        response["incomplete_details"] = json!({"reason": reason});
    }
}
