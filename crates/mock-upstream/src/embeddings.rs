//! `POST /v1/embeddings`: deterministic 8-float vectors.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::error::bad_request;
use crate::preflight;
use crate::state::MockState;
use crate::tokens::input_tokens;

/// Dimensions of every mock embedding.
pub const DIMENSIONS: usize = 8;

pub async fn embeddings(State(state): State<MockState>, body: Bytes) -> Response {
    let (request, knobs) = match preflight::parse(&state, &body) {
        Ok(parsed) => parsed,
        Err(rejection) => return rejection.into_response(),
    };
    let Some(model) = request.get("model").and_then(Value::as_str) else {
        return bad_request("you must provide a model parameter", Some("model"));
    };
    let Some(inputs) = request.get("input").and_then(inputs) else {
        return bad_request(
            "'input' must be a string or an array of strings",
            Some("input"),
        );
    };
    if let Some(response) = preflight::run(&state, &knobs).await {
        return response;
    }
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| json!({"object": "embedding", "index": i, "embedding": embed(text)}))
        .collect();
    let tokens = input_tokens(&inputs);
    let mut body = json!({
        "object": "list",
        "data": data,
        "model": model,
    });
    if knobs.usage {
        body["usage"] = json!({"prompt_tokens": tokens, "total_tokens": tokens});
    }
    Json(body).into_response()
}

/// `input` as a list of strings (token-id arrays are not supported).
fn inputs(input: &Value) -> Option<Vec<String>> {
    match input {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    }
}

/// The bytes of a 64-bit FNV-1a hash of `text`, each scaled to 0..=1.
/// FNV is fixed by its spec, so vectors never change between builds.
pub fn embed(text: &str) -> Vec<f64> {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    hash.to_be_bytes()
        .iter()
        .take(DIMENSIONS)
        .map(|&b| f64::from(b) / 255.0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_are_deterministic_and_distinct() {
        assert_eq!(embed("hello"), embed("hello"));
        assert_ne!(embed("hello"), embed("world"));
        assert_eq!(embed("x").len(), DIMENSIONS);
        assert!(embed("x").iter().all(|v| (0.0..=1.0).contains(v)));
    }
}
