//! The `streamGenerateContent?alt=sse` stream: one `data:` event per piece, each a whole
//! `GenerateContentResponse` with the usage so far; the last event carries the
//! `finishReason` and the complete usage. No end marker: the stream simply ends.

use axum::response::Response;
use serde_json::{Value, json};

use super::Answer;
use crate::knobs::Knobs;
use crate::sse;
use crate::tokens::split_reply;

pub(super) fn response(answer: &Answer, knobs: &Knobs) -> Response {
    sse::play(events(answer, knobs), knobs)
}

fn event(data: Value) -> Option<String> {
    Some(format!("data: {data}"))
}

/// The events in order; `None` marks an abrupt abort (`drop_after_chunks`).
fn events(a: &Answer, knobs: &Knobs) -> Vec<Option<String>> {
    let partial = json!({"promptTokenCount": a.usage["promptTokenCount"]});
    let mut parts: Vec<Vec<Value>> = Vec::new();
    if let Some(reasoning) = &a.reasoning {
        parts.push(vec![json!({"text": reasoning, "thought": true})]);
    }
    if let Some(text) = &a.text {
        let pieces = split_reply(text, knobs.chunks);
        let sent = knobs
            .drop_after_chunks
            .map_or(pieces.len(), |n| n.min(pieces.len()));
        parts.extend(pieces[..sent].iter().map(|p| vec![json!({"text": p})]));
        if knobs.drop_after_chunks.is_some() {
            let mut out: Vec<_> = parts
                .into_iter()
                .map(|p| event(a.response(p, false, partial.clone())))
                .collect();
            out.push(None);
            return out;
        }
    }
    if knobs.error_event {
        let mut out: Vec<_> = parts
            .into_iter()
            .map(|p| event(a.response(p, false, partial.clone())))
            .collect();
        out.push(event(json!({"error": {"code": 500,
            "message": "mock in-band error", "status": "INTERNAL"}})));
        return out;
    }
    // Function calls arrive whole, in the last event, as Gemini sends them.
    let calls = a.call_parts();
    if !calls.is_empty() {
        parts.push(calls);
    }
    let last = parts.len().saturating_sub(1);
    parts
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            if i == last {
                event(a.response(p, true, a.usage.clone()))
            } else {
                event(a.response(p, false, partial.clone()))
            }
        })
        .collect()
}
