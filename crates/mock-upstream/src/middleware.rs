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

/// `fail_keys`: fails requests that present one of the listed upstream keys (as a bearer
/// token, `x-api-key` or `x-goog-api-key`) with `fail_status` (default 500), so a test can
/// make one key of a multi-key channel fail while the others answer.
///
/// `echo_key` (knob or `Defaults::echo_key`): fails the request with `fail_status`
/// (default 401) and an error message that repeats the credential it was sent, bare and
/// as a bearer header, like a careless upstream would.
pub async fn fail_for_keys(
    State(state): State<MockState>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large or unreadable",
            None,
            None,
        );
    };
    // Parse only bodies that can hold the knobs: the mock also serves benchmarks.
    let mentions = |name: &[u8]| bytes.windows(name.len()).any(|w| w == name);
    let knobs =
        (state.defaults().echo_key || mentions(b"\"fail_keys\"") || mentions(b"\"echo_key\""))
            .then(|| serde_json::from_slice::<Value>(&bytes).ok())
            .flatten()
            .and_then(|body| body.get("mock").cloned());
    let knob = |name: &str| knobs.as_ref().and_then(|mock| mock.get(name));
    let fail_status = |default: u16| {
        knob("fail_status")
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or(default)
    };
    let header = |name: header::HeaderName| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let presented = header(header::AUTHORIZATION)
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| header(header::HeaderName::from_static("x-api-key")))
        .or_else(|| header(header::HeaderName::from_static("x-goog-api-key")));
    let echo = state.defaults().echo_key && !parts.uri.path().starts_with("/mock/")
        || knob("echo_key").and_then(Value::as_bool) == Some(true);
    if echo {
        let key = presented.unwrap_or_default();
        let status = StatusCode::from_u16(fail_status(401)).unwrap_or(StatusCode::UNAUTHORIZED);
        let message =
            format!("The key {key} is not valid (received header Authorization: Bearer {key})");
        let code = (status == StatusCode::UNAUTHORIZED).then_some("invalid_api_key");
        return error_response(status, &message, None, code);
    }
    let listed: Vec<&str> = knob("fail_keys")
        .and_then(Value::as_array)
        .map(|keys| keys.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if presented.is_some_and(|key| listed.contains(&key)) {
        return crate::error::mock_failure(fail_status(500));
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}
