//! Chat usage → the Responses usage object.

use serde_json::{Value, json};

use crate::protocol::openai::usage::WireUsage;

/// The Responses usage of a chat answer's `usage` (any dialect the relay passes on).
/// `input_tokens` includes the cached ones, as OpenAI reports them; an answer without
/// usage reports zeros. The gateway's cost members are carried over (docs/api/cost.md).
pub fn usage_from_chat(usage: Option<&Value>) -> Value {
    let counts = usage
        .and_then(|u| serde_json::from_value::<WireUsage>(u.clone()).ok())
        .and_then(|u| u.counts())
        .unwrap_or_default();
    let reasoning = usage
        .and_then(|u| u.pointer("/completion_tokens_details/reasoning_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let mut out = json!({
        "input_tokens": counts.prompt,
        "input_tokens_details": {
            "cached_tokens": counts.cached,
            "cache_write_tokens": counts.cache_write,
        },
        "output_tokens": counts.completion,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": counts.prompt + counts.completion,
    });
    crate::protocol::openai::charge::carry_cost(usage, &mut out);
    out
}
