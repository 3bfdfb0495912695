//! Per-request behaviour knobs, read from the optional `"mock"` object of the
//! request body (the gateway under test is expected to pass it through).

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::state::Defaults;

/// Knobs as written in the request; unknown names are rejected so a typo in a
/// test fails loudly instead of silently testing the default behaviour.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    ttfb_ms: Option<u64>,
    chunk_delay_ms: Option<u64>,
    chunks: Option<usize>,
    reply: Option<String>,
    cached_tokens: Option<u64>,
    fail_status: Option<u16>,
    fail_times: Option<u32>,
    fail_key: Option<String>,
    hang: Option<bool>,
    drop_after_chunks: Option<usize>,
    keepalive: Option<bool>,
    usage: Option<bool>,
    usage_in_choice: Option<bool>,
    mid_stream_error: Option<bool>,
    split_events: Option<bool>,
}

/// Resolved knobs: request values with server [`Defaults`] filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Knobs {
    pub ttfb: Duration,
    pub chunk_delay: Duration,
    pub chunks: usize,
    pub reply: Option<String>,
    pub cached_tokens: u64,
    pub fail_status: Option<u16>,
    pub fail_times: Option<u32>,
    /// Counter key for `fail_times`; requests without one share `""`.
    pub fail_key: String,
    pub hang: bool,
    pub drop_after_chunks: Option<usize>,
    pub keepalive: bool,
    pub usage: bool,
    pub usage_in_choice: bool,
    pub mid_stream_error: bool,
    pub split_events: bool,
}

impl Knobs {
    /// Reads `body["mock"]`; absent or null means all defaults.
    pub fn from_body(body: &Value, defaults: &Defaults) -> Result<Self, String> {
        let raw = match body.get("mock") {
            None | Some(Value::Null) => Raw::default(),
            Some(v) => Raw::deserialize(v).map_err(|e| format!("invalid mock knobs: {e}"))?,
        };
        if let Some(status) = raw.fail_status
            && !(100..=999).contains(&status)
        {
            return Err(format!(
                "invalid mock knobs: fail_status {status} out of range"
            ));
        }
        Ok(Self {
            ttfb: Duration::from_millis(raw.ttfb_ms.unwrap_or(defaults.ttfb_ms)),
            chunk_delay: Duration::from_millis(
                raw.chunk_delay_ms.unwrap_or(defaults.chunk_delay_ms),
            ),
            chunks: raw.chunks.unwrap_or(defaults.chunks),
            reply: raw.reply,
            cached_tokens: raw.cached_tokens.unwrap_or(0),
            fail_status: raw.fail_status,
            fail_times: raw.fail_times,
            fail_key: raw.fail_key.unwrap_or_default(),
            hang: raw.hang.unwrap_or(false),
            drop_after_chunks: raw.drop_after_chunks,
            keepalive: raw.keepalive.unwrap_or(false),
            usage: raw.usage.unwrap_or(true),
            usage_in_choice: raw.usage_in_choice.unwrap_or(false),
            mid_stream_error: raw.mid_stream_error.unwrap_or(false),
            split_events: raw.split_events.unwrap_or(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn absent_knobs_use_defaults() {
        let defaults = Defaults {
            ttfb_ms: 5,
            chunk_delay_ms: 7,
            chunks: 3,
            ..Defaults::default()
        };
        for body in [json!({}), json!({"mock": null}), json!({"mock": {}})] {
            let k = Knobs::from_body(&body, &defaults).expect("valid");
            assert_eq!(k.ttfb, Duration::from_millis(5));
            assert_eq!(k.chunk_delay, Duration::from_millis(7));
            assert_eq!(k.chunks, 3);
            assert!(k.usage && !k.hang && k.fail_status.is_none());
            assert_eq!(k.fail_key, "");
        }
    }

    #[test]
    fn knobs_override_defaults() {
        let body = json!({"mock": {
            "ttfb_ms": 1, "chunks": 9, "reply": "r", "cached_tokens": 4,
            "fail_status": 503, "fail_times": 2, "fail_key": "k",
            "usage": false, "usage_in_choice": true, "drop_after_chunks": 1
        }});
        let k = Knobs::from_body(&body, &Defaults::default()).expect("valid");
        assert_eq!(k.ttfb, Duration::from_millis(1));
        assert_eq!(k.chunks, 9);
        assert_eq!(k.reply.as_deref(), Some("r"));
        assert_eq!(k.cached_tokens, 4);
        assert_eq!((k.fail_status, k.fail_times), (Some(503), Some(2)));
        assert_eq!(k.fail_key, "k");
        assert!(!k.usage && k.usage_in_choice);
        assert_eq!(k.drop_after_chunks, Some(1));
    }

    #[test]
    fn bad_knobs_are_rejected() {
        let d = Defaults::default();
        for mock in [
            json!({"ttfb": 1}),
            json!({"chunks": "two"}),
            json!({"fail_status": 42}),
            json!("x"),
        ] {
            assert!(
                Knobs::from_body(&json!({ "mock": mock }), &d).is_err(),
                "{mock}"
            );
        }
    }
}
