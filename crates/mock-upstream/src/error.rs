//! OpenAI-shaped error responses.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// `{"error":{message,type,param,code}}`; the type follows OpenAI's split
/// between client (4xx) and server errors.
pub fn error_body(
    status: StatusCode,
    message: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Value {
    let kind = if status.is_client_error() {
        "invalid_request_error"
    } else {
        "server_error"
    };
    json!({"error": {"message": message, "type": kind, "param": param, "code": code}})
}

pub fn error_response(
    status: StatusCode,
    message: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response {
    (status, Json(error_body(status, message, param, code))).into_response()
}

/// 400 for a malformed request. A small type rather than a `Response` so
/// it can travel in `Result`s cheaply.
#[derive(Debug)]
pub struct BadRequest {
    pub message: String,
    pub param: Option<&'static str>,
}

impl BadRequest {
    pub fn new(message: impl Into<String>, param: Option<&'static str>) -> Self {
        Self {
            message: message.into(),
            param,
        }
    }
}

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        error_response(StatusCode::BAD_REQUEST, &self.message, self.param, None)
    }
}

/// 400 for a malformed request, as a response.
pub fn bad_request(message: &str, param: Option<&'static str>) -> Response {
    BadRequest::new(message, param).into_response()
}

/// The scripted failure of the `fail_status` knob.
pub fn mock_failure(status: u16) -> Response {
    // Range-checked when the knobs were parsed; 500 is a safe fallback.
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    error_response(
        status,
        &format!("mock failure {}", status.as_u16()),
        None,
        None,
    )
}
