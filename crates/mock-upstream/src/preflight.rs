//! Behaviour shared by every scripted endpoint before it produces a body:
//! hanging, time to first byte and scripted failures.

use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use serde_json::Value;

use crate::error::{BadRequest, error_response, mock_failure};
use crate::knobs::Knobs;
use crate::state::MockState;

/// Parses the body as a JSON object and reads its knobs, or the 400 to send.
pub fn parse(state: &MockState, body: &Bytes) -> Result<(Value, Knobs), BadRequest> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        BadRequest::new(
            format!("We could not parse the JSON body of your request: {e}"),
            None,
        )
    })?;
    if !value.is_object() {
        return Err(BadRequest::new(
            "The request body must be a JSON object.",
            None,
        ));
    }
    let knobs =
        Knobs::from_body(&value, state.defaults()).map_err(|e| BadRequest::new(e, Some("mock")))?;
    Ok((value, knobs))
}

/// A failure with the vendor-specific body the test asked for.
fn custom_failure(status: u16, body: &Value) -> Response {
    use axum::response::IntoResponse;
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(body.clone())).into_response()
}

/// Applies `hang`, `ttfb_ms` and `fail_*` (except `fail_keys`). Returns the response to send
/// instead of the normal one, if any.
pub async fn run(state: &MockState, knobs: &Knobs) -> Option<Response> {
    if knobs.hang {
        // Never answer; only a server shutdown releases the handler, so the
        // graceful shutdown does not wait forever.
        state.shutdown_signal().await;
        return Some(error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "mock server shutting down",
            None,
            None,
        ));
    }
    if !knobs.ttfb.is_zero() {
        tokio::time::sleep(knobs.ttfb).await;
    }
    match knobs.fail_status {
        // With `fail_keys`, the key check in `middleware::fail_for_keys` already decided.
        Some(status)
            if knobs.fail_keys.is_empty()
                && state.should_fail(&knobs.fail_key, knobs.fail_times) =>
        {
            Some(match &knobs.fail_body {
                Some(body) => custom_failure(status, body),
                None => mock_failure(status),
            })
        }
        _ => None,
    }
}
