//! Local token counting, used only when an upstream reports no usage (the record is then
//! marked `estimated`) and by the built-in demo model.
//!
//! The count uses OpenAI's `o200k_base` encoding. For Qwen, GLM, DeepSeek or Doubao
//! tokenizers it is an estimate, which is why records say so.

use serde::Deserialize;

use crate::protocol::openai::operation::Operation;
use serde_json::value::RawValue;

/// Tokens OpenAI adds around every chat message, and once to prime the reply.
const PER_MESSAGE_OVERHEAD: u64 = 3;
const REPLY_PRIMING: u64 = 3;

pub fn count_text(text: &str) -> u64 {
    if text.is_empty() {
        return 0;
    }
    tiktoken_rs::o200k_base_singleton()
        .encode_ordinary(text)
        .len() as u64
}

#[derive(Deserialize)]
struct MessagesOnly<'a> {
    #[serde(borrow, default)]
    messages: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    role: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    content: Option<Content>,
    #[serde(default)]
    tool_calls: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize)]
struct Part {
    #[serde(default)]
    text: Option<String>,
}

/// Estimated input tokens of a request body of any operation.
pub fn count_prompt(operation: Operation, body: &[u8]) -> u64 {
    match operation {
        Operation::Chat => count_chat_prompt(body),
        Operation::Completions | Operation::Embeddings => {
            count_input_texts(body, operation.input_field())
        }
    }
}

/// The strings of a `prompt`/`input` member (a string or an array of strings); token-id
/// arrays count one token per id.
fn count_input_texts(body: &[u8], field: &str) -> u64 {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return 0;
    };
    fn count(value: &serde_json::Value) -> u64 {
        match value {
            serde_json::Value::String(text) => count_text(text),
            serde_json::Value::Number(_) => 1,
            serde_json::Value::Array(items) => items.iter().map(count).sum(),
            _ => 0,
        }
    }
    value.get(field).map_or(0, count)
}

/// Estimated prompt tokens of an OpenAI chat request body: role, name, text content and
/// tool calls of each message plus OpenAI's fixed per-message overhead.
pub fn count_chat_prompt(body: &[u8]) -> u64 {
    let Ok(request) = serde_json::from_slice::<MessagesOnly>(body) else {
        return 0;
    };
    let mut total = REPLY_PRIMING;
    for raw in request.messages {
        let Ok(message) = serde_json::from_str::<Message>(raw.get()) else {
            continue;
        };
        total += PER_MESSAGE_OVERHEAD + count_text(&message.role);
        total += message.name.as_deref().map_or(0, count_text);
        total += match message.content {
            Some(Content::Text(text)) => count_text(&text),
            Some(Content::Parts(parts)) => parts
                .iter()
                .filter_map(|p| p.text.as_deref())
                .map(count_text)
                .sum(),
            None => 0,
        };
        total += message
            .tool_calls
            .as_deref()
            .map_or(0, |calls| count_text(calls.get()));
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_text_with_o200k() {
        assert_eq!(count_text(""), 0);
        assert_eq!(count_text("Hello world"), 2);
    }

    #[test]
    fn counts_chat_messages_with_overhead() {
        let body = br#"{"model":"m","messages":[{"role":"user","content":"Hello world"}]}"#;
        // priming 3 + overhead 3 + "user" 1 + "Hello world" 2
        assert_eq!(count_chat_prompt(body), 9);
        let parts = br#"{"messages":[{"role":"user","content":[{"type":"text","text":"Hello world"},{"type":"image_url","image_url":{"url":"x"}}]}]}"#;
        assert_eq!(count_chat_prompt(parts), 9);
    }

    #[test]
    fn counts_prompts_and_inputs_of_other_operations() {
        let completions = br#"{"model":"m","prompt":["Hello world","Hello world"]}"#;
        assert_eq!(count_prompt(Operation::Completions, completions), 4);
        let embeddings = br#"{"model":"m","input":[[1,2,3],[4]]}"#;
        assert_eq!(count_prompt(Operation::Embeddings, embeddings), 4);
        assert_eq!(
            count_prompt(Operation::Embeddings, br#"{"input":"Hello world"}"#),
            2
        );
    }

    #[test]
    fn tolerates_garbage() {
        assert_eq!(count_chat_prompt(b"not json"), 0);
        assert_eq!(
            count_chat_prompt(br#"{"messages":[42,{"role":"user","content":null}]}"#),
            3 + 3 + 1
        );
    }
}
