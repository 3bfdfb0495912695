//! The Anthropic surface's error: `{"type":"error","error":{"type","message"}}` with the
//! status the relay chose (`RelayError::status`), so both surfaces agree on statuses and
//! differ only in shape.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;

use crate::protocol::anthropic::inbound::error_body;
use crate::relay::RelayError;

#[derive(Debug)]
pub struct AnthropicError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    retry_after: Option<std::time::Duration>,
}

impl AnthropicError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> AnthropicError {
        AnthropicError {
            status,
            kind: kind_for(status),
            message: message.into(),
            retry_after: crate::relay::error::default_retry_after(status.as_u16()),
        }
    }

    pub fn invalid_request(message: impl Into<String>) -> AnthropicError {
        AnthropicError::new(StatusCode::BAD_REQUEST, message)
    }
}

/// Anthropic's error type for a status (docs.anthropic.com "Errors").
fn kind_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 405 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    }
}

impl From<RelayError> for AnthropicError {
    fn from(error: RelayError) -> Self {
        let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_GATEWAY);
        AnthropicError {
            retry_after: error.retry_after(),
            ..AnthropicError::new(status, error.to_string())
        }
    }
}

impl IntoResponse for AnthropicError {
    fn into_response(self) -> Response {
        let body = error_body(self.kind, &self.message);
        let mut response = (self.status, Json(body)).into_response();
        if let Some(wait) = self.retry_after {
            response.headers_mut().insert(
                http::header::RETRY_AFTER,
                crate::api::error::retry_after_value(wait),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_errors_keep_their_status() {
        let error = AnthropicError::from(RelayError::ModelNotFound("m".into()));
        assert_eq!(
            (error.status.as_u16(), error.kind),
            (404, "not_found_error")
        );
        let error = AnthropicError::from(RelayError::Unauthenticated("no key".into()));
        assert_eq!(
            (error.status.as_u16(), error.kind),
            (401, "authentication_error")
        );
        assert_eq!(kind_for(StatusCode::BAD_GATEWAY), "api_error");
    }
}
