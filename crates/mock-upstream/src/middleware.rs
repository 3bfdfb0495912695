//! Request journal and API-key check.

use std::collections::BTreeMap;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::Value;

use crate::error::error_response;
use crate::state::{MockState, RecordedRequest};

/// Largest request body accepted (and journaled).
pub const MAX_BODY: usize = 32 * 1024 * 1024;

/// Records every request except `/mock/*` control calls, which would
/// otherwise pollute the journal that tests read through them.
pub async fn record(State(state): State<MockState>, request: Request, next: Next) -> Response {
    if request.uri().path().starts_with("/mock/") {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large or unreadable",
            None,
            None,
        );
    };
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    tracing::debug!(method = %parts.method, path = parts.uri.path(), "request");
    state.record(RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    });
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Enforces `Defaults::api_key` when set. Runs after `record`, so rejected
/// requests still show up in the journal (tests check what was sent).
pub async fn auth(State(state): State<MockState>, request: Request, next: Next) -> Response {
    if let Some(key) = &state.defaults().api_key {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if presented != Some(key.as_str()) {
            return error_response(
                StatusCode::UNAUTHORIZED,
                "Incorrect API key provided",
                None,
                Some("invalid_api_key"),
            );
        }
    }
    next.run(request).await
}
