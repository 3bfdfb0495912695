//! `mock-upstream`: a scriptable, deterministic fake LLM provider speaking
//! the OpenAI wire format, for TokenHub's integration tests and benchmarks.
//!
//! Endpoints (each also served without the `/v1` prefix):
//! `POST /v1/chat/completions`, `GET /v1/models`, `POST /v1/embeddings`, and
//! `POST /v1/messages` in Anthropic's Messages dialect (see [`messages`]), and
//! `POST /v1beta/models/{model}:generateContent` / `:streamGenerateContent` in Gemini's
//! (see [`gemini`], not under `/v1`); the OpenAI routes again under `/beta` (DeepSeek's
//! beta features);
//! plus `GET /mock/journal` and `POST /mock/reset` for out-of-process tests.
//!
//! Behaviour is scripted per request through an optional `"mock"` object in
//! the JSON body (see [`Knobs`]), falling back to the server's [`Defaults`].
//! Reply text and token counts are deterministic; see [`tokens`] for the rule.

mod chat;
mod embeddings;
mod error;
pub mod gemini;
mod knobs;
mod legacy;
pub mod messages;
mod middleware;
pub mod models;
mod preflight;
mod responses;
mod rules;
pub mod schema_instance;
mod server;
mod sse;
mod state;
pub mod tokens;

pub use embeddings::embed;
pub use knobs::Knobs;
pub use server::{MockServer, router};
pub use state::{Defaults, MockState, RecordedRequest};
pub use tokens::{
    REPLY_PREFIX, anthropic_prompt_tokens, completion_tokens, prompt_tokens, reply_for, split_reply,
};
