//! OpenAI `response_format` on Claude (docs/api/structured-output.md).
//!
//! - `json_schema` on a model with Anthropic's structured outputs (Haiku 4.5, Sonnet 4.5,
//!   Opus 4.1 and every later model: `model_rules`): the schema goes as
//!   `output_config.format = {type: "json_schema", schema}` and the answer's text is the
//!   JSON, so nothing changes on the way back.
//! - `json_schema` on an older model, and `json_object` on any: one tool whose
//!   `input_schema` is the schema (an open object for `json_object`), forced with
//!   `tool_choice`. The answer's call to it becomes the message `content` (its arguments
//!   JSON) with `finish_reason: "stop"`, streamed as content deltas ([`answer_from_tool`]
//!   and `StreamTranslator::answering_with_tool`). Not combined with the client's own
//!   tools: which tool the model must call would be ambiguous (`json_schema` is refused
//!   then, `json_object` is dropped as the hint it is).
//!
//! Anthropic documents structured outputs at
//! platform.claude.com/docs/en/build-with-claude/structured-outputs (GA form
//! `output_config.format`; the beta form was `output_format`).

use serde_json::{Map, Value, json};

use super::TranslateError;
use super::model_rules::ModelRules;
use super::wire::{Tool, ToolChoice};
use crate::protocol::openai::chat::ResponseFormat;

/// The tool a `json_object` answer is given through (a `json_schema` one is named after
/// its schema's `name`).
pub const JSON_OBJECT_TOOL: &str = "json_answer";

/// How the request asks Claude for JSON.
#[derive(Debug, PartialEq)]
pub enum Structured {
    /// `output_config.format`, Anthropic's own parameter.
    Native(Value),
    /// A forced tool; its call is the answer.
    AnswerTool(Tool),
}

/// The translation of `response_format`, or `None` for text (or no format).
pub fn structured(
    format: Option<&ResponseFormat>,
    rules: ModelRules,
    client_tools: bool,
) -> Result<Option<Structured>, TranslateError> {
    let Some(format) = format else {
        return Ok(None);
    };
    let (name, schema) = match format.kind.as_str() {
        "json_schema" => {
            let spec = format.json_schema.as_ref();
            let schema = spec.and_then(|s| s.schema.clone()).ok_or_else(|| {
                TranslateError::invalid(
                    "`response_format.json_schema.schema` is required for models served by Anthropic",
                )
            })?;
            if rules.structured_outputs {
                return Ok(Some(Structured::Native(
                    json!({"type": "json_schema", "schema": schema}),
                )));
            }
            let name = spec
                .and_then(|s| s.name.clone())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| JSON_OBJECT_TOOL.to_string());
            (name, schema)
        }
        // JSON mode beside the client's own tools stays a hint Claude goes without, as
        // before: forcing a tool would stop the model from calling the client's.
        "json_object" if client_tools => return Ok(None),
        "json_object" => (
            JSON_OBJECT_TOOL.to_string(),
            json!({"type": "object", "additionalProperties": true}),
        ),
        _ => return Ok(None), // "text"
    };
    if client_tools {
        return Err(TranslateError::unsupported(
            "`response_format` together with `tools` on this model (it has no native structured output)",
        ));
    }
    Ok(Some(Structured::AnswerTool(Tool {
        name,
        description: Some("Give your whole answer as this tool's input.".into()),
        input_schema: schema,
        cache_control: None,
    })))
}

impl Structured {
    /// Writes the request members: `output_config.format`, or the tool and its forcing.
    pub fn apply(
        self,
        tools: &mut Vec<Tool>,
        tool_choice: &mut Option<ToolChoice>,
        extra: &mut Map<String, Value>,
    ) -> Option<String> {
        match self {
            Structured::Native(format) => {
                let config = extra
                    .entry("output_config")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(config) = config {
                    config.insert("format".into(), format);
                }
                None
            }
            Structured::AnswerTool(tool) => {
                let name = tool.name.clone();
                *tool_choice = Some(ToolChoice::Tool {
                    name: name.clone(),
                    disable_parallel_tool_use: Some(true),
                });
                tools.push(tool);
                Some(name)
            }
        }
    }
}

/// A translated `chat.completion` whose call to `tool` becomes its `content`.
pub fn answer_from_tool(completion: &mut Value, tool: &str) {
    let Some(message) = completion.pointer_mut("/choices/0/message") else {
        return;
    };
    let calls = message
        .get_mut("tool_calls")
        .and_then(Value::as_array_mut)
        .map(std::mem::take)
        .unwrap_or_default();
    let (answer, others): (Vec<Value>, Vec<Value>) = calls
        .into_iter()
        .partition(|call| call.pointer("/function/name").and_then(Value::as_str) == Some(tool));
    let Some(arguments) = answer
        .first()
        .and_then(|call| call.pointer("/function/arguments"))
        .and_then(Value::as_str)
    else {
        message["tool_calls"] = Value::Array(others);
        return;
    };
    message["content"] = Value::String(arguments.to_string());
    if let Some(object) = message.as_object_mut() {
        object.remove("tool_calls");
    }
    if let Some(choice) = completion.pointer_mut("/choices/0") {
        choice["finish_reason"] = Value::from("stop");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::anthropic::StreamTranslator;
    use crate::protocol::sse::{SseDecoder, SseEvent};

    #[test]
    fn the_answer_tool_call_becomes_the_content() {
        let mut completion = json!({"choices": [{"index": 0, "finish_reason": "tool_calls",
            "message": {"role": "assistant", "content": null, "tool_calls": [{"id": "t",
                "type": "function", "function": {"name": "person", "arguments": "{\"name\":\"Ada\"}"}}]}}]});
        answer_from_tool(&mut completion, "person");
        assert_eq!(
            completion["choices"][0],
            json!({"index": 0, "finish_reason": "stop",
                   "message": {"role": "assistant", "content": "{\"name\":\"Ada\"}"}})
        );
    }

    #[test]
    fn the_answer_tool_call_streams_as_content() {
        let mut translator = StreamTranslator::new(1).answering_with_tool(Some("person".into()));
        let events = [
            json!({"type": "message_start", "message": {"id": "msg_1", "model": "m", "usage": {"input_tokens": 3, "output_tokens": 0}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "t", "name": "person", "input": {}}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{\"name\":"}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "\"Ada\"}"}}),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 4}}),
        ];
        let mut decoder = SseDecoder::default();
        let mut chunks = Vec::new();
        for event in events {
            decoder.push(&SseEvent::data_bytes(event.to_string().as_bytes()));
            let event = decoder.next_event().unwrap().unwrap();
            chunks.extend(translator.on_event(&event).unwrap());
        }
        let chunks: Vec<Value> = chunks
            .iter()
            .map(|c| serde_json::from_str(c).unwrap())
            .collect();
        let content: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(content, "{\"name\":\"Ada\"}");
        assert!(
            chunks
                .iter()
                .all(|c| c["choices"][0]["delta"].get("tool_calls").is_none())
        );
        assert_eq!(
            chunks.last().unwrap()["choices"][0]["finish_reason"],
            "stop"
        );
    }
}
