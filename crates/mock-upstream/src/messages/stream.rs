//! The Messages stream: `message_start`, per block `content_block_start` / `_delta` /
//! `_stop`, a `ping`, `message_delta` (stop reason, cumulative output usage) and
//! `message_stop`. No `[DONE]`: Anthropic streams end with `message_stop`.

use axum::response::Response;
use serde_json::{Value, json};

use super::Answer;
use crate::knobs::Knobs;
use crate::sse;
use crate::tokens::{split_even, split_reply};

pub(super) fn response(answer: &Answer, knobs: &Knobs) -> Response {
    sse::play(events(answer, knobs), knobs)
}

fn event(data: Value) -> Option<String> {
    let name = data["type"].as_str().unwrap_or("message").to_owned();
    Some(format!("event: {name}\ndata: {data}"))
}

/// The events in order; `None` marks an abrupt abort (`drop_after_chunks`).
fn events(a: &Answer, knobs: &Knobs) -> Vec<Option<String>> {
    let mut out = vec![event(json!({"type": "message_start", "message": {
        "id": a.id, "type": "message", "role": "assistant", "model": a.model,
        "content": [], "stop_reason": null, "stop_sequence": null, "usage": a.usage(1),
    }}))];
    let mut index = 0;
    if let Some((thought, signature)) = &a.thinking {
        out.push(event(json!({"type": "content_block_start", "index": index,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""}})));
        out.push(event(json!({"type": "content_block_delta", "index": index,
            "delta": {"type": "thinking_delta", "thinking": thought}})));
        out.push(event(json!({"type": "content_block_delta", "index": index,
            "delta": {"type": "signature_delta", "signature": signature}})));
        out.push(event(json!({"type": "content_block_stop", "index": index})));
        index += 1;
    }
    if a.redacted {
        out.push(event(json!({"type": "content_block_start", "index": index,
            "content_block": {"type": "redacted_thinking", "data": super::thinking::REDACTED}})));
        out.push(event(json!({"type": "content_block_stop", "index": index})));
        index += 1;
    }
    if let Some(text) = &a.text {
        out.push(event(json!({"type": "content_block_start", "index": index,
            "content_block": {"type": "text", "text": ""}})));
        out.push(event(json!({"type": "ping"})));
        let pieces = split_reply(text, knobs.chunks);
        let sent = knobs
            .drop_after_chunks
            .map_or(pieces.len(), |n| n.min(pieces.len()));
        for piece in &pieces[..sent] {
            out.push(event(json!({"type": "content_block_delta", "index": index,
                "delta": {"type": "text_delta", "text": piece}})));
        }
        if knobs.drop_after_chunks.is_some() {
            out.push(None);
            return out;
        }
        out.push(event(json!({"type": "content_block_stop", "index": index})));
        index += 1;
    }
    if knobs.error_event {
        out.push(event(json!({"type": "error",
            "error": {"type": "overloaded_error", "message": "mock in-band error"}})));
        return out;
    }
    for (id, name, arguments, pieces) in &a.tools {
        out.push(event(json!({"type": "content_block_start", "index": index,
            "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}})));
        // Anthropic opens every tool's input with an empty piece.
        for piece in std::iter::once(String::new()).chain(split_even(arguments, *pieces)) {
            out.push(event(json!({"type": "content_block_delta", "index": index,
                "delta": {"type": "input_json_delta", "partial_json": piece}})));
        }
        out.push(event(json!({"type": "content_block_stop", "index": index})));
        index += 1;
    }
    out.push(event(json!({"type": "message_delta",
        "delta": {"stop_reason": a.stop_reason, "stop_sequence": null},
        "usage": {"output_tokens": a.output_tokens}})));
    out.push(event(json!({"type": "message_stop"})));
    out
}
