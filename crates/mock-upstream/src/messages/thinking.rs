//! The mock's extended thinking: a request with thinking on (`enabled` or `adaptive`) gets a
//! signed `thinking` block first (and, with the `redacted_thinking` knob, a
//! `redacted_thinking` block after it). The signature is a digest of the thinking text, so
//! a block that comes back changed, or without its signature, is told apart from one the
//! mock issued, as Anthropic does with its encrypted signatures.

use serde_json::Value;

/// What the mock "thinks"; its words count as output tokens, as Anthropic bills thinking.
pub const THOUGHT: &str = "The user wants an answer; I will give it.";

/// The `data` of the mock's redacted thinking block.
pub const REDACTED: &str = "EmwKAhgBEgyMockRedactedThinking";

/// The signature the mock gives a thinking block with this text.
pub fn sign(thinking: &str) -> String {
    // FNV-1a: deterministic, dependency-free; the mock only needs to detect changes.
    let digest = thinking.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("EqMock{digest:016x}")
}

/// Whether the request switches thinking on.
pub fn is_on(request: &Value) -> bool {
    matches!(
        request.pointer("/thinking/type").and_then(Value::as_str),
        Some("enabled" | "adaptive")
    )
}

/// Whether a thinking block from the request is one the mock issued, unchanged.
pub fn is_intact(block: &Value) -> bool {
    match block.get("type").and_then(Value::as_str) {
        Some("thinking") => {
            let text = block.get("thinking").and_then(Value::as_str).unwrap_or("");
            block.get("signature").and_then(Value::as_str) == Some(sign(text).as_str())
        }
        Some("redacted_thinking") => block.get("data").and_then(Value::as_str) == Some(REDACTED),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_unchanged_signed_blocks_are_intact() {
        let signed = json!({"type": "thinking", "thinking": THOUGHT, "signature": sign(THOUGHT)});
        assert!(is_intact(&signed));
        let edited = json!({"type": "thinking", "thinking": "edited", "signature": sign(THOUGHT)});
        assert!(!is_intact(&edited));
        assert!(!is_intact(
            &json!({"type": "thinking", "thinking": THOUGHT})
        ));
        assert!(is_intact(
            &json!({"type": "redacted_thinking", "data": REDACTED})
        ));
        assert!(!is_intact(
            &json!({"type": "redacted_thinking", "data": "x"})
        ));
        assert_ne!(sign("a"), sign("b"));
    }
}
