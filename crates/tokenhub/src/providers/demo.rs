//! The built-in `demo` channel: an offline stand-in upstream that answers in OpenAI's
//! format, so a fresh install shows the whole flow (keys, streaming, usage, billing)
//! before any provider key is set. Its reply is deterministic and its usage is counted
//! with the same tokenizer the gateway uses for estimates.

use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use super::{FailureKind, UpstreamFailure, UpstreamResponse};
use crate::protocol::sse::SseEvent;
use crate::tokens;

/// Pause between streamed pieces: enough to see streaming happen, short enough for tests.
const PIECE_INTERVAL: Duration = Duration::from_millis(15);
const PIECES: usize = 8;
const ECHO_LIMIT_CHARS: usize = 200;

#[derive(Deserialize)]
struct DemoRequest {
    model: String,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    messages: Vec<Message>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    role: String,
    #[serde(default)]
    content: Option<serde_json::Value>,
}

/// The reply to a conversation whose last user message is `said`.
pub fn reply_to(said: &str) -> String {
    let said = said.trim();
    let echo: String = said.chars().take(ECHO_LIMIT_CHARS).collect();
    let ellipsis = if said.chars().count() > ECHO_LIMIT_CHARS {
        "…"
    } else {
        ""
    };
    format!(
        "Hello! I am TokenHub's built-in demo model, running offline inside the gateway. \
         You said: \"{echo}{ellipsis}\". Add a provider key (for example DEEPSEEK_API_KEY) to talk to a real model."
    )
}

fn last_user_text(messages: &[Message]) -> String {
    let Some(content) = messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .and_then(|m| m.content.as_ref())
    else {
        return String::new();
    };
    match content {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(|t| t.as_str()))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// Splits text into at most `pieces` consecutive parts on word boundaries.
pub fn split_pieces(text: &str, pieces: usize) -> Vec<&str> {
    let boundaries: Vec<usize> = text.match_indices(' ').map(|(i, _)| i + 1).collect();
    let per_piece = boundaries.len().div_ceil(pieces.max(1)).max(1);
    let mut parts = Vec::with_capacity(pieces);
    let mut start = 0;
    for end in boundaries.iter().skip(per_piece - 1).step_by(per_piece) {
        parts.push(&text[start..*end]);
        start = *end;
    }
    if start < text.len() {
        parts.push(&text[start..]);
    }
    parts
}

pub fn send_chat(body: &[u8]) -> Result<UpstreamResponse, UpstreamFailure> {
    let request: DemoRequest = serde_json::from_slice(body).map_err(|e| {
        UpstreamFailure::new(
            FailureKind::Status(400),
            format!("demo model: invalid request: {e}"),
        )
    })?;
    let reply = reply_to(&last_user_text(&request.messages));
    let prompt_tokens = tokens::count_chat_prompt(body, tokens::Budget::SERVING_THREAD);
    let completion_tokens = tokens::count_text(&reply);
    let usage = json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0}
    });
    let id = format!("chatcmpl-demo-{}", uuid::Uuid::new_v4().simple());
    let created = super::transport::unix_now();
    if !request.stream.unwrap_or(false) {
        let body = json!({
            "id": id, "object": "chat.completion", "created": created, "model": request.model,
            "system_fingerprint": "fp_tokenhub_demo",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply, "refusal": null},
                         "logprobs": null, "finish_reason": "stop"}],
            "usage": usage,
        });
        let bytes = Bytes::from(body.to_string());
        return Ok(UpstreamResponse {
            body: Box::pin(futures_util::stream::iter([Ok(bytes)])),
        });
    }
    let with_usage = request
        .stream_options
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    let chunk = |delta: serde_json::Value, finish: Option<&str>| {
        let mut chunk = json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": request.model,
            "system_fingerprint": "fp_tokenhub_demo",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        if with_usage {
            chunk["usage"] = serde_json::Value::Null;
        }
        SseEvent::data_bytes(chunk.to_string().as_bytes())
    };
    let mut events = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    events.extend(
        split_pieces(&reply, PIECES)
            .into_iter()
            .map(|piece| chunk(json!({"content": piece}), None)),
    );
    events.push(chunk(json!({}), Some("stop")));
    if with_usage {
        let usage_chunk = json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": request.model,
            "system_fingerprint": "fp_tokenhub_demo", "choices": [], "usage": usage,
        });
        events.push(SseEvent::data_bytes(usage_chunk.to_string().as_bytes()));
    }
    events.push(Bytes::from_static(b"data: [DONE]\n\n"));
    let paced =
        futures_util::stream::unfold(events.into_iter().enumerate(), |mut events| async move {
            let (index, event) = events.next()?;
            if index > 0 {
                tokio::time::sleep(PIECE_INTERVAL).await;
            }
            Some((Ok(event), events))
        });
    Ok(UpstreamResponse {
        body: Box::pin(paced),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_concatenate_to_the_text() {
        let text = reply_to("Hello!");
        let pieces = split_pieces(&text, PIECES);
        assert!(pieces.len() > 1 && pieces.len() <= PIECES, "{pieces:?}");
        assert_eq!(pieces.concat(), text);
        assert_eq!(split_pieces("one", 4), ["one"]);
        assert!(split_pieces("", 4).is_empty());
    }

    #[test]
    fn reply_echoes_a_bounded_prefix() {
        assert!(reply_to("  hi  ").contains("You said: \"hi\""));
        let long = "x".repeat(500);
        assert!(reply_to(&long).contains(&format!("{}…", "x".repeat(ECHO_LIMIT_CHARS))));
    }

    #[test]
    fn reads_text_parts() {
        let messages: Vec<Message> = serde_json::from_str(
            r#"[{"role":"user","content":"first"},{"role":"assistant","content":"x"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]"#,
        )
        .unwrap();
        assert_eq!(last_user_text(&messages), "a b");
    }
}
