//! The documented request rules of the OpenAI-compatible vendors, enforced on
//! `/v1/chat/completions` so a gateway that breaks one fails its tests the way it would
//! fail in production. Each rule cites where it is written.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::models;

/// The refusal the vendor would send for this request, if any.
pub fn refuse(request: &Value, model: &str) -> Option<Response> {
    models::refuse_unknown(model).or_else(|| kimi_fixed_parameters(request, model))
}

/// Kimi K2.5 and K2.6 fix their sampling: `temperature` (1.0 thinking, 0.6 with
/// thinking disabled), `top_p` 0.95, `n` 1, `presence_penalty` and `frequency_penalty` 0
/// are marked "cannot be modified" in https://platform.kimi.ai/docs/api/models-overview
/// (read 2026-12-05). The message is the one clients report ("invalid temperature: only
/// 1 is allowed for this model"). kimi-k2-thinking's temperature may be set (same table).
fn kimi_fixed_parameters(request: &Value, model: &str) -> Option<Response> {
    if !["kimi-k2.5", "kimi-k2.6"].contains(&model) {
        return None;
    }
    let thinking_off =
        request.pointer("/thinking/type").and_then(Value::as_str) == Some("disabled");
    let temperature = if thinking_off { 0.6 } else { 1.0 };
    let fixed = [
        ("temperature", temperature),
        ("top_p", 0.95),
        ("n", 1.0),
        ("presence_penalty", 0.0),
        ("frequency_penalty", 0.0),
    ];
    let (name, allowed) = fixed.into_iter().find(|(name, allowed)| {
        request
            .get(*name)
            .filter(|v| !v.is_null())
            .is_some_and(|v| v.as_f64() != Some(*allowed))
    })?;
    let body = json!({"error": {
        "message": format!("invalid {name}: only {allowed} is allowed for this model"),
        "type": "invalid_request_error"}});
    Some((StatusCode::BAD_REQUEST, Json(body)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kimi_fixed_parameters_refuse_changes_only() {
        let refused = |body: Value, model: &str| kimi_fixed_parameters(&body, model).is_some();
        assert!(refused(json!({"temperature": 0.2}), "kimi-k2.5"));
        assert!(refused(json!({"n": 2}), "kimi-k2.6"));
        assert!(refused(json!({"presence_penalty": 0.5}), "kimi-k2.5"));
        assert!(refused(json!({"frequency_penalty": -1}), "kimi-k2.5"));
        assert!(refused(json!({"top_p": 0.5}), "kimi-k2.5"));
        assert!(!refused(
            json!({"temperature": 1.0, "n": 1, "top_p": 0.95}),
            "kimi-k2.5"
        ));
        assert!(!refused(
            json!({"temperature": 0.6, "thinking": {"type": "disabled"}}),
            "kimi-k2.5"
        ));
        assert!(!refused(json!({"temperature": 0.2}), "kimi-k2-thinking"));
        assert!(!refused(json!({"presence_penalty": 0.5}), "moonshot-v1-8k"));
    }
}
