//! A turn as the gateway stores it, and the conversation rebuilt from stored turns.
//!
//! Each stored response keeps only its own turn: the input it was sent, as Responses items
//! with ids (`input_items`), and its Response (whose `output` is the answer). A
//! conversation is the turns of a `previous_response_id` chain, oldest first:
//!
//! - `conversation`: the chat messages a continuation replays (every turn's input, then its
//!   output; never `instructions`, as OpenAI does not carry them over);
//! - `listed_items`: what `GET /v1/responses/{id}/input_items` lists for the newest turn
//!   (the earlier turns' inputs and outputs, then its own input), as OpenAI lists them.
//!
//! A row stored before turns were split holds the chat messages of the whole conversation
//! through its answer (`Turn::Whole`); it can only be the oldest turn of a chain.

use serde_json::{Value, json};

use super::TranslateError;
use super::request::input_messages;
use super::response::assistant_message;

/// One stored turn of a conversation.
#[derive(Clone, Debug, PartialEq)]
pub enum Turn {
    /// This turn's input items and its Response.
    Own { input: Vec<Value>, response: Value },
    /// A row written before turns were split: the chat messages of every turn through this
    /// one's answer, and its Response.
    Whole {
        conversation: Vec<Value>,
        response: Value,
    },
}

/// `input` as the Responses items OpenAI lists back: a string is one user message, an
/// easy message (`{"role", "content": "text"}`) gets its `type` and a list of parts, and
/// an item without an id gets one derived from the id of the response it was sent to.
/// The input was validated (`request_to_chat`) or accepted by the upstream before it is
/// stored.
pub fn input_items(response_id: &str, input: Option<&Value>) -> Vec<Value> {
    let items = match input {
        Some(Value::String(text)) => vec![json!({"role": "user", "content": text})],
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    };
    items
        .into_iter()
        .enumerate()
        .map(|(n, item)| normalized_item(response_id, n, item))
        .collect()
}

fn normalized_item(response_id: &str, n: usize, mut item: Value) -> Value {
    let Some(object) = item.as_object_mut() else {
        return item;
    };
    let kind = object
        .entry("type")
        .or_insert_with(|| json!("message"))
        .as_str()
        .unwrap_or_default()
        .to_string();
    if kind == "message" {
        let part = match object.get("role").and_then(Value::as_str) {
            Some("assistant") => "output_text",
            _ => "input_text",
        };
        if let Some(Value::String(text)) = object.get("content") {
            let parts = json!([{"type": part, "text": text}]);
            object.insert("content".into(), parts);
        }
        object.entry("status").or_insert_with(|| json!("completed"));
    }
    if object.get("id").is_none_or(Value::is_null) {
        let prefix = match kind.as_str() {
            "message" => "msg",
            "function_call" => "fc",
            "function_call_output" => "fco",
            "reasoning" => "rs",
            _ => "item",
        };
        object.insert(
            "id".into(),
            json!(item_id(response_id, prefix, &format!("i{n:02}"))),
        );
    }
    item
}

/// An item id the gateway gives: its kind's prefix, the response id's random part, and
/// where the item is (never the form of an output item id, `Frame::item_id`).
fn item_id(response_id: &str, prefix: &str, place: &str) -> String {
    let base = response_id.strip_prefix("resp_").unwrap_or(response_id);
    format!("{prefix}_{base}{place}")
}

/// The chat messages of `turns` (oldest first): what a request continuing the newest one
/// replays before its own input.
pub fn conversation(turns: &[Turn]) -> Result<Vec<Value>, TranslateError> {
    let mut messages = Vec::new();
    for turn in turns {
        match turn {
            Turn::Own { input, response } => {
                messages.extend(input_messages(Some(&Value::Array(input.clone())))?);
                messages.extend(assistant_message(response)?);
            }
            Turn::Whole { conversation, .. } => messages.extend(conversation.iter().cloned()),
        }
    }
    Ok(messages)
}

/// The items `input_items` lists for the newest of `turns` (oldest first), in the
/// conversation's order: every earlier turn's input and output, then its own input.
pub fn listed_items(turns: &[Turn]) -> Vec<Value> {
    let mut items = Vec::new();
    let last = turns.len().saturating_sub(1);
    for (position, turn) in turns.iter().enumerate() {
        let own = position == last;
        match turn {
            Turn::Own { input, response } => {
                items.extend(input.iter().cloned());
                if !own {
                    items.extend(output_of(response));
                }
            }
            Turn::Whole {
                conversation,
                response,
            } => {
                // Its answer's messages end the stored conversation; the newest turn
                // lists its input only.
                let answer = if own {
                    assistant_message(response).map_or(0, |m| m.len())
                } else {
                    0
                };
                let kept = conversation.len().saturating_sub(answer);
                items.extend(
                    conversation[..kept]
                        .iter()
                        .enumerate()
                        .flat_map(|(n, message)| items_of_chat(response, n, message)),
                );
            }
        }
    }
    items
}

fn output_of(response: &Value) -> Vec<Value> {
    response
        .get("output")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// A chat message of a conversation stored before turns were split, as Responses items
/// (ids derived from the response's id and the message's place).
fn items_of_chat(response: &Value, n: usize, message: &Value) -> Vec<Value> {
    let response_id = response["id"].as_str().unwrap_or_default();
    let id = |prefix: &str, k: usize| item_id(response_id, prefix, &format!("h{n:03}{k}"));
    let role = message["role"].as_str().unwrap_or("user");
    if role == "tool" {
        return vec![json!({"id": id("fco", 0), "type": "function_call_output",
            "call_id": message["tool_call_id"], "output": message["content"]})];
    }
    let mut items = Vec::new();
    let text = match &message["content"] {
        Value::String(text) => Some(text.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(|p| p["text"].as_str())
                .collect::<String>(),
        ),
        _ => None,
    };
    if let Some(text) = text {
        let part = if role == "assistant" {
            "output_text"
        } else {
            "input_text"
        };
        let role = if role == "system" { "developer" } else { role };
        items.push(json!({"id": id("msg", 0), "type": "message", "role": role,
            "status": "completed", "content": [{"type": part, "text": text}]}));
    }
    let calls = message["tool_calls"].as_array().into_iter().flatten();
    for (k, call) in calls.enumerate() {
        items.push(json!({"id": id("fc", k + 1), "type": "function_call",
            "status": "completed", "call_id": call["id"], "name": call["function"]["name"],
            "arguments": call["function"]["arguments"]}));
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_string_input_is_one_user_message_with_an_id() {
        let items = input_items("resp_ab", Some(&json!("hi")));
        assert_eq!(
            items,
            [json!({"id": "msg_abi00", "type": "message", "role": "user",
                "status": "completed", "content": [{"type": "input_text", "text": "hi"}]})]
        );
    }

    #[test]
    fn items_keep_their_ids_and_easy_messages_get_parts() {
        let input = json!([
            {"role": "assistant", "content": "before"},
            {"type": "function_call_output", "call_id": "c1", "output": "42"},
            {"type": "message", "id": "msg_client", "role": "user",
                "content": [{"type": "input_text", "text": "x"}]},
        ]);
        let items = input_items("resp_ab", Some(&input));
        assert_eq!(items[0]["content"][0]["type"], "output_text");
        assert_eq!(items[0]["id"], "msg_abi00");
        assert_eq!(items[1]["id"], "fco_abi01");
        assert_eq!(items[2]["id"], "msg_client");
    }

    fn turn(id: &str, input: &str, answer: &str) -> Turn {
        let output = json!([{"id": format!("msg_{id}"), "type": "message", "role": "assistant",
            "status": "completed", "content": [{"type": "output_text", "text": answer}]}]);
        Turn::Own {
            input: input_items(id, Some(&json!(input))),
            response: json!({"id": id, "output": output}),
        }
    }

    #[test]
    fn a_chain_replays_every_turn_and_lists_earlier_outputs() {
        let turns = [turn("resp_1", "one", "1"), turn("resp_2", "two", "2")];
        assert_eq!(
            conversation(&turns).unwrap(),
            [
                json!({"role": "user", "content": "one"}),
                json!({"role": "assistant", "content": "1"}),
                json!({"role": "user", "content": "two"}),
                json!({"role": "assistant", "content": "2"}),
            ]
        );
        let listed = listed_items(&turns);
        let ids: Vec<&str> = listed.iter().map(|i| i["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["msg_1i00", "msg_resp_1", "msg_2i00"]);
    }

    #[test]
    fn a_row_stored_whole_starts_the_conversation() {
        let whole = Turn::Whole {
            conversation: vec![
                json!({"role": "user", "content": "old"}),
                json!({"role": "assistant", "content": null,
                    "tool_calls": [{"id": "c1", "type": "function",
                        "function": {"name": "f", "arguments": "{}"}}]}),
            ],
            response: json!({"id": "resp_0", "output": [{"type": "function_call",
                "call_id": "c1", "name": "f", "arguments": "{}"}]}),
        };
        let turns = [whole.clone(), turn("resp_1", "new", "ok")];
        let messages = conversation(&turns).unwrap();
        assert_eq!(messages.len(), 4);
        assert_eq!(messages[1]["tool_calls"][0]["id"], "c1");
        let listed = listed_items(&turns);
        let kinds: Vec<&str> = listed.iter().map(|i| i["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["message", "function_call", "message"]);
        // Listed for itself, an old row shows its input, not its answer.
        let own = listed_items(&[whole]);
        assert_eq!(own.len(), 1);
        assert_eq!(own[0]["content"][0]["text"], "old");
    }
}
