//! The one error type of the HTTP surfaces: it renders OpenAI's error body with the right
//! status, whatever went wrong (relay refusal, upstream failure, bad body, unknown route).

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;

use crate::protocol::openai::error::{ErrorBody, ErrorObject};
use crate::providers::FailureKind;
use crate::relay::RelayError;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorObject,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        kind: &str,
        code: Option<&str>,
        param: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            body: ErrorObject {
                message: message.into(),
                kind: kind.to_string(),
                param: param.map(str::to_string),
                code: code.map(str::to_string),
            },
        }
    }

    pub fn invalid_request(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError::new(status, "invalid_request_error", None, None, message)
    }
}

impl From<RelayError> for ApiError {
    fn from(error: RelayError) -> Self {
        let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_GATEWAY);
        let message = error.to_string();
        let (kind, code, param) = match &error {
            RelayError::Unauthenticated(_) => {
                ("invalid_request_error", Some("invalid_api_key"), None)
            }
            RelayError::InvalidRequest(invalid) => ("invalid_request_error", None, invalid.param),
            RelayError::ModelNotFound(_) => (
                "invalid_request_error",
                Some("model_not_found"),
                Some("model"),
            ),
            RelayError::Insufficient(_) => ("insufficient_quota", Some("insufficient_quota"), None),
            RelayError::NoChannel { .. } => (
                "service_unavailable_error",
                Some("model_not_available"),
                Some("model"),
            ),
            RelayError::Upstream(failure) => match failure.kind {
                FailureKind::Status(400 | 413 | 422) => ("invalid_request_error", None, None),
                FailureKind::Status(429) => ("rate_limit_error", Some("rate_limit_exceeded"), None),
                FailureKind::Timeout => ("upstream_error", Some("upstream_timeout"), None),
                _ => ("upstream_error", Some("upstream_error"), None),
            },
        };
        ApiError::new(status, kind, code, param, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorBody { error: self.body })).into_response()
    }
}

pub async fn not_found(uri: http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        Some("unknown_url"),
        None,
        format!("Unknown request URL: {}.", uri.path()),
    )
}

pub async fn method_not_allowed(method: http::Method, uri: http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        Some("method_not_allowed"),
        None,
        format!("Method {method} is not allowed for {}.", uri.path()),
    )
}
