//! The inbound direction: an Anthropic Messages client served through the OpenAI relay
//! pipeline, whatever the upstream (shared/docs/providers.md §3.9).
//!
//! - `request`: a Messages request body → an OpenAI chat request body.
//! - `response`: a `chat.completion` body → a Messages response.
//! - `stream`: `chat.completion.chunk` data → Messages stream events.
//!
//! Usage goes the other way from `protocol::anthropic`'s outbound translators: the
//! OpenAI `prompt_tokens` includes cached and cache-written tokens, Anthropic's
//! `input_tokens` excludes both, so `input_tokens = prompt − cached − cache_write`.
//!
//! Pure functions of their inputs, golden-tested in `tests/it/anthropic_inbound_golden.rs`.

pub mod request;
pub mod response;
pub mod stream;

pub use request::{InboundRequest, request_to_openai};
pub use response::{message_from_openai, stop_reason};
pub use stream::{AnthropicEvent, InboundStream};

use serde_json::{Value, json};

use crate::ledger::money::TokenCounts;
use crate::protocol::openai::usage::WireUsage;

/// OpenAI usage (any dialect the relay passes on) as Anthropic's usage object. The
/// gateway's cost members (`protocol::openai::charge`) are carried over as they are.
pub fn usage_from_openai(usage: Option<&Value>) -> Value {
    let counts = usage
        .and_then(|u| serde_json::from_value::<WireUsage>(u.clone()).ok())
        .and_then(|u| u.counts())
        .unwrap_or_default();
    let mut out = anthropic_usage(counts);
    crate::protocol::openai::charge::carry_cost(usage, &mut out);
    out
}

fn anthropic_usage(counts: TokenCounts) -> Value {
    let mut usage = json!({
        "input_tokens": counts.prompt.saturating_sub(counts.cached + counts.cache_write),
        "cache_creation_input_tokens": counts.cache_write,
        "cache_read_input_tokens": counts.cached,
        "output_tokens": counts.completion,
    });
    // The writes by lifetime, as Anthropic reports them, when there were any.
    if counts.cache_write > 0 {
        usage["cache_creation"] = json!({
            "ephemeral_5m_input_tokens": counts.cache_write - counts.cache_write_1h,
            "ephemeral_1h_input_tokens": counts.cache_write_1h,
        });
    }
    usage
}

/// `{"type":"error","error":{"type","message"}}`: Anthropic's error body and stream event.
pub fn error_body(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}
