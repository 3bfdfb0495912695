//! Streaming (`stream: true`) chat responses as server-sent events.
//!
//! The whole event sequence is planned up front from the knobs, then played
//! back as a body stream: each step sleeps its delay and yields one frame, so
//! every event reaches the socket on its own (nothing is buffered).

use std::io;
use std::time::Duration;

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::chat::Completion;
use crate::knobs::Knobs;
use crate::tokens::{split_even, split_reply};

/// Minimal pause that makes the body stream return Pending, so hyper flushes
/// what it has: between the pieces of a split event (so they arrive as
/// separate reads) and before an abort (else hyper may drop the connection
/// before even the headers and earlier events were written).
const FLUSH_PAUSE: Duration = Duration::from_millis(1);

/// One frame of the body, sent after `delay`.
struct Step {
    delay: Duration,
    /// `None` aborts the connection (the `drop_after_chunks` knob).
    frame: Option<Bytes>,
}

/// Builds the streaming response for `completion`.
pub fn response(completion: Completion, knobs: &Knobs) -> Response {
    play(events(&completion, knobs), knobs)
}

/// Streams already-rendered SSE events (each without its blank line; `None` aborts the
/// connection), honouring the timing and splitting knobs.
pub(crate) fn play(events: Vec<Option<String>>, knobs: &Knobs) -> Response {
    let steps = plan(events, knobs);
    let body = futures_util::stream::iter(steps).then(|step| async move {
        if !step.delay.is_zero() {
            tokio::time::sleep(step.delay).await;
        }
        // An error from the body stream makes hyper reset the connection:
        // the client sees a truncated stream, like a crashed upstream.
        step.frame.ok_or_else(|| {
            io::Error::new(io::ErrorKind::ConnectionAborted, "mock drop_after_chunks")
        })
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// The SSE events in order; `None` marks an abrupt abort.
fn events(c: &Completion, knobs: &Knobs) -> Vec<Option<String>> {
    let mut out = Vec::new();
    if knobs.keepalive {
        out.push(Some(": keep-alive".to_owned()));
    }
    let data = |v: Value| Some(format!("data: {v}"));
    out.push(data(
        c.chunk(json!({"role": "assistant", "content": ""}), None),
    ));
    if let Some(reasoning) = &knobs.reasoning {
        out.push(data(c.chunk(json!({"reasoning_content": reasoning}), None)));
    }
    // An answer that is only tool calls has no content deltas.
    let pieces = if c.reply.is_empty() && !c.tool_calls.is_empty() {
        Vec::new()
    } else {
        split_reply(&c.reply, knobs.chunks)
    };
    let sent = knobs
        .drop_after_chunks
        .map_or(pieces.len(), |n| n.min(pieces.len()));
    for piece in &pieces[..sent] {
        out.push(data(c.chunk(json!({"content": piece}), None)));
    }
    if knobs.drop_after_chunks.is_none() {
        for (k, call) in c.tool_calls.iter().enumerate() {
            out.push(data(c.chunk(
                json!({"tool_calls": [{"index": k, "id": call.id,
                "type": "function", "function": {"name": call.name, "arguments": ""}}]}),
                None,
            )));
            for piece in split_even(&call.arguments, call.pieces) {
                out.push(data(c.chunk(
                    json!({"tool_calls": [{"index": k,
                    "function": {"arguments": piece}}]}),
                    None,
                )));
            }
        }
    }
    if knobs.drop_after_chunks.is_some() {
        out.push(None);
        return out;
    }
    if knobs.mid_stream_error {
        let message = knobs
            .error_message
            .as_deref()
            .unwrap_or("mock mid-stream failure");
        let error = json!({"error": {
            "message": message, "type": "server_error", "param": null, "code": null
        }});
        out.push(data(error));
        return out;
    }
    let mut finish = c.chunk(json!({}), Some(&c.finish_reason));
    if knobs.usage && knobs.usage_in_choice {
        // Moonshot quirk: usage rides inside the final choice.
        finish["choices"][0]["usage"] = c.usage.clone();
    }
    out.push(data(finish));
    if knobs.usage && c.include_usage && !knobs.usage_in_choice {
        out.push(data(c.usage_chunk()));
    }
    out.push(Some("data: [DONE]".to_owned()));
    out
}

fn plan(events: Vec<Option<String>>, knobs: &Knobs) -> Vec<Step> {
    let eol = if knobs.split_events { "\r\n" } else { "\n" };
    let mut steps = Vec::new();
    for (i, event) in events.into_iter().enumerate() {
        let delay = if i == 0 {
            Duration::ZERO
        } else {
            knobs.chunk_delay
        };
        let Some(text) = event else {
            let delay = delay.max(FLUSH_PAUSE);
            steps.push(Step { delay, frame: None });
            break;
        };
        let bytes = Bytes::from(format!("{text}{eol}{eol}"));
        if knobs.split_events {
            for (j, piece) in split_awkwardly(bytes).into_iter().enumerate() {
                let delay = if j == 0 { delay } else { FLUSH_PAUSE };
                steps.push(Step {
                    delay,
                    frame: Some(piece),
                });
            }
        } else {
            steps.push(Step {
                delay,
                frame: Some(bytes),
            });
        }
    }
    steps
}

/// Cuts an event ending in `\r\n\r\n` in the middle (inside the JSON, maybe
/// inside a UTF-8 character: decoders must buffer bytes, not decode per read)
/// and between each `\r` and its `\n`.
fn split_awkwardly(event: Bytes) -> Vec<Bytes> {
    let len = event.len();
    let cuts = [len / 2, len.saturating_sub(3), len.saturating_sub(1)];
    let mut pieces = Vec::new();
    let mut start = 0;
    for cut in cuts {
        if cut > start && cut < len {
            pieces.push(event.slice(start..cut));
            start = cut;
        }
    }
    pieces.push(event.slice(start..));
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn awkward_split_cuts_crlf_and_keeps_bytes() {
        let event = Bytes::from_static(b"data: {\"a\":1}\r\n\r\n");
        let pieces = split_awkwardly(event.clone());
        assert_eq!(pieces.len(), 4);
        assert_eq!(pieces[2].as_ref(), b"\n\r");
        assert_eq!(pieces[3].as_ref(), b"\n");
        assert_eq!(pieces.concat(), event.to_vec());
    }
}
