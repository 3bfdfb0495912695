//! The `thought_signature` knob: Gemini 3's signed function calls.
//!
//! With the knob, the first `functionCall` part of the answer carries the knob's value
//! as its `thoughtSignature` (Gemini signs the first call of each step), and, as
//! Gemini 3 does, a request is refused when a `model` turn's first `functionCall` part
//! does not carry that signature back. A translation that loses the signature between
//! two turns therefore fails the second one.

use serde_json::Value;

/// The index in `contents` of the first model turn whose first function call is not
/// signed with `signature`, if any.
pub fn unsigned_turn(request: &Value, signature: &str) -> Option<usize> {
    let contents = request.get("contents").and_then(Value::as_array)?;
    contents.iter().position(|turn| {
        let is_model = turn.get("role").and_then(Value::as_str) == Some("model");
        let first_call = turn
            .get("parts")
            .and_then(Value::as_array)
            .and_then(|parts| parts.iter().find(|p| p.get("functionCall").is_some()));
        match first_call {
            Some(call) if is_model => {
                call.get("thoughtSignature").and_then(Value::as_str) != Some(signature)
            }
            _ => false,
        }
    })
}

/// Gemini's refusal, shortened, naming the turn.
pub fn missing_message(turn: usize) -> String {
    format!(
        "Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly. (contents[{turn}])"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_model_turns_with_calls_need_the_signature_on_their_first_call() {
        let call = |sig: Option<&str>| {
            let mut part = json!({"functionCall": {"name": "f", "args": {}}});
            if let Some(sig) = sig {
                part["thoughtSignature"] = json!(sig);
            }
            part
        };
        let request = |first: Value| {
            json!({"contents": [
                {"role": "user", "parts": [{"text": "hi"}]},
                {"role": "model", "parts": [{"text": "checking"}, first, call(None)]},
                {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]}
            ]})
        };
        assert_eq!(unsigned_turn(&request(call(Some("s1"))), "s1"), None);
        assert_eq!(unsigned_turn(&request(call(None)), "s1"), Some(1));
        assert_eq!(unsigned_turn(&request(call(Some("other"))), "s1"), Some(1));
        let no_calls = json!({"contents": [{"role": "model", "parts": [{"text": "x"}]}]});
        assert_eq!(unsigned_turn(&no_calls, "s1"), None);
    }
}
