//! Anthropic Messages API: its wire types, and pure translations between it and OpenAI
//! Chat Completions, so an OpenAI client can be served by a Claude upstream.
//!
//! - `request`: an OpenAI chat body → a Messages request body.
//! - `response`: a Messages response → a `chat.completion` body.
//! - `stream`: Messages stream events → `chat.completion.chunk` data, then `[DONE]`.
//! - `inbound`: the other direction, an Anthropic client served by any upstream.
//! - `model_rules`: what each model family accepts (sampling, thinking form).
//! - `carry`: thinking blocks carried across turns in tool call ids.
//!
//! Usage follows the OpenAI convention on the way out: `prompt_tokens` is the whole
//! prompt (`input_tokens` + `cache_read_input_tokens` + `cache_creation_input_tokens`,
//! since Anthropic's `input_tokens` excludes both cache classes),
//! `prompt_tokens_details.cached_tokens` the cache reads, and the non-standard
//! `prompt_tokens_details.cache_write_tokens` the cache writes, which are priced apart
//! (see `protocol::openai::usage`).
//!
//! Everything here is a function of its inputs: the `created` timestamp is a parameter,
//! so the golden tests (`tests/it/anthropic_golden.rs`) compare exact values.

pub mod carry;
pub mod inbound;
pub mod model_rules;
pub mod request;
pub mod response;
pub mod stream;
pub mod structured;
pub mod wire;

pub use request::{RequestOptions, Translated, request_from_openai};
pub use response::response_to_openai;
pub use stream::StreamTranslator;

/// An OpenAI request that cannot be expressed for Anthropic, or an Anthropic answer that
/// cannot be read. The adapter turns the first kind into a 400 for the client.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TranslateError {
    pub message: String,
}

impl TranslateError {
    /// The request is well-formed OpenAI but uses a feature Claude has no equivalent for.
    pub fn unsupported(feature: &str) -> TranslateError {
        TranslateError {
            message: format!("{feature} is not supported for models served by Anthropic"),
        }
    }

    pub fn invalid(message: impl Into<String>) -> TranslateError {
        TranslateError {
            message: message.into(),
        }
    }
}
