//! Google Gemini's native API (`generateContent` / `streamGenerateContent?alt=sse`): its
//! wire types, and pure translations between it and OpenAI Chat Completions, so an OpenAI
//! client can be served by a Gemini upstream (shared/docs/providers.md §4.1).
//!
//! - `request`: an OpenAI chat body → a `GenerateContentRequest` body.
//! - `response`: a `GenerateContentResponse` → a `chat.completion` body.
//! - `stream`: the `data:` events of `streamGenerateContent?alt=sse` →
//!   `chat.completion.chunk` data, then a usage chunk and `[DONE]` when the upstream ends.
//!
//! Gemini has no tool call ids: calls get `call_<k>` (k counts the calls of one answer
//! from 0), and a tool result finds its function name through the `id` of the assistant
//! tool call it answers. A call the model signed (`thoughtSignature`) carries its
//! signature in the id, and the signature goes back to Gemini when the id comes back
//! (`signature`).
//!
//! Usage follows the OpenAI convention: `prompt_tokens` = `promptTokenCount` +
//! `toolUsePromptTokenCount`, `prompt_tokens_details.cached_tokens` =
//! `cachedContentTokenCount` (Gemini counts it inside the prompt already),
//! `completion_tokens` = `candidatesTokenCount` + `thoughtsTokenCount` (thinking is billed
//! as output), with the thoughts also in `completion_tokens_details.reasoning_tokens`.
//!
//! Everything here is a function of its inputs (`created` is a parameter), so the golden
//! tests (`tests/it/gemini_golden.rs`) compare exact values.

pub mod request;
pub mod response;
pub mod signature;
pub mod stream;
pub mod wire;

pub use request::{Translated, request_from_openai};
pub use response::response_to_openai;
pub use stream::StreamTranslator;

/// An OpenAI request that cannot be expressed for Gemini, or a Gemini answer that cannot
/// be read. The adapter turns the first kind into a 400 for the client.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TranslateError {
    pub message: String,
}

impl TranslateError {
    /// The request is well-formed OpenAI but uses a feature Gemini has no equivalent for.
    pub fn unsupported(feature: &str) -> TranslateError {
        TranslateError {
            message: format!("{feature} is not supported for models served by Gemini"),
        }
    }

    pub fn invalid(message: impl Into<String>) -> TranslateError {
        TranslateError {
            message: message.into(),
        }
    }
}

/// Whether an error body is Gemini's answer to a bad API key. Gemini sends it with status
/// 400, which would read as the client's mistake; it is the channel's, so the adapter
/// reports it as a 401 (another channel is tried, and this one's key is set aside).
pub fn rejects_the_key(error_body: &[u8]) -> bool {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(error_body) else {
        return false;
    };
    body.pointer("/error/details")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .any(|detail| {
            detail.get("reason").and_then(serde_json::Value::as_str) == Some("API_KEY_INVALID")
        })
}

/// Whether an error body is a `FAILED_PRECONDITION`: the channel's project cannot serve
/// (billing not enabled, free tier not offered in the region it calls from; see
/// https://ai.google.dev/gemini-api/docs/troubleshooting and the Vertex AI API errors
/// table, read 2026-12-05). Gemini sends it with status 400, but it is no fault of the
/// client: the adapter reports it as a 503, so another channel is tried and this one's
/// health pays.
pub fn channel_cannot_serve(error_body: &[u8]) -> bool {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(error_body) else {
        return false;
    };
    body.pointer("/error/status")
        .and_then(serde_json::Value::as_str)
        == Some("FAILED_PRECONDITION")
}
