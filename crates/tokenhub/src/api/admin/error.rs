//! The management API's one error type. Every `/api/…` failure leaves as
//! `{"error":{"code":"…","message":"…"}}` with a matching status; `code` is a stable,
//! machine-readable string (listed in `Code`), `message` is for people. The OpenAI
//! surface's error body has the same two members, so one client check reads both.

use axum::Json;
use axum::extract::FromRequest;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::accounts::AccountError;
use crate::store::StoreError;

/// The stable error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// 400: the request is malformed or a value is out of range.
    InvalidRequest,
    /// 401: no or unknown credentials (also: an `sk-` API key on a management route).
    Unauthenticated,
    /// 403: a cookie request without the matching `X-CSRF-Token`.
    CsrfFailed,
    /// 403: known caller, insufficient role (or sign-up is closed).
    Forbidden,
    /// 404: no such thing, or not yours.
    NotFound,
    /// 409: a name taken, a code already used, a last root protected.
    Conflict,
    /// 429: too many login attempts.
    RateLimited,
    /// 502: an upstream (a channel's `/models`) failed.
    UpstreamError,
    /// 503: the database is unreachable, or a feature this deployment has not
    /// configured (mail); the message says which.
    Unavailable,
    /// 500.
    Internal,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidRequest => "invalid_request",
            Code::Unauthenticated => "unauthenticated",
            Code::CsrfFailed => "csrf_failed",
            Code::Forbidden => "forbidden",
            Code::NotFound => "not_found",
            Code::Conflict => "conflict",
            Code::RateLimited => "rate_limited",
            Code::UpstreamError => "upstream_error",
            Code::Unavailable => "unavailable",
            Code::Internal => "internal_error",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Code::InvalidRequest => StatusCode::BAD_REQUEST,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::CsrfFailed | Code::Forbidden => StatusCode::FORBIDDEN,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::Conflict => StatusCode::CONFLICT,
            Code::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Code::UpstreamError => StatusCode::BAD_GATEWAY,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[derive(Debug)]
pub struct ManageError {
    code: Code,
    message: String,
    retry_after_secs: Option<u64>,
}

/// The wire shape of every management error.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// One of: invalid_request, unauthenticated, csrf_failed, forbidden, not_found,
    /// conflict, rate_limited, upstream_error, internal_error.
    pub code: String,
    pub message: String,
}

impl ManageError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn new(code: Code, message: impl Into<String>) -> Self {
        let wait = crate::relay::error::default_retry_after(code.status().as_u16());
        ManageError {
            code,
            message: message.into(),
            retry_after_secs: wait.map(crate::api::error::seconds_rounded_up),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        ManageError::new(Code::InvalidRequest, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        ManageError::new(Code::Forbidden, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ManageError::new(Code::NotFound, message)
    }

    pub fn code(&self) -> Code {
        self.code
    }
}

impl From<AccountError> for ManageError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::Store(store) => store.into(),
            AccountError::NoSuchUser(_) | AccountError::NotFound(_) => {
                ManageError::new(Code::NotFound, error.to_string())
            }
            AccountError::Invalid(m) => ManageError::invalid(m),
            AccountError::Conflict(m) => ManageError::new(Code::Conflict, m),
            AccountError::Forbidden(m) => ManageError::forbidden(m),
            AccountError::Unauthenticated(m) => ManageError::new(Code::Unauthenticated, m),
            AccountError::RateLimited { retry_after_secs } => ManageError {
                retry_after_secs: Some(retry_after_secs),
                ..ManageError::new(Code::RateLimited, error.to_string())
            },
            AccountError::Upstream(m) => ManageError::new(Code::UpstreamError, m),
        }
    }
}

impl From<StoreError> for ManageError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(m) => ManageError::not_found(m),
            StoreError::Conflict(m) => ManageError::new(Code::Conflict, m),
            StoreError::OutOfRange(m) => ManageError::invalid(m),
            other if other.is_unavailable() => {
                tracing::warn!(error = %other, "management request: database unavailable");
                let mut error = ManageError::new(
                    Code::Unavailable,
                    "the database is unavailable; retry shortly",
                );
                error.retry_after_secs = Some(2);
                error
            }
            other => {
                // The database's text may name tables or hosts: log it, say less.
                tracing::error!(error = %other, "management request failed in the store");
                ManageError::new(Code::Internal, "internal error; see the server log")
            }
        }
    }
}

impl From<JsonRejection> for ManageError {
    fn from(rejection: JsonRejection) -> Self {
        ManageError::invalid(rejection.body_text())
    }
}

impl From<QueryRejection> for ManageError {
    fn from(rejection: QueryRejection) -> Self {
        ManageError::invalid(rejection.body_text())
    }
}

impl From<PathRejection> for ManageError {
    fn from(rejection: PathRejection) -> Self {
        ManageError::invalid(rejection.body_text())
    }
}

impl IntoResponse for ManageError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.as_str().into(),
                message: self.message,
            },
        };
        let mut response = (self.code.status(), Json(body)).into_response();
        if let Some(seconds) = self.retry_after_secs {
            response.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from(seconds.max(1)),
            );
        }
        response
    }
}

/// A JSON body whose rejections (bad JSON, wrong content type, missing field) leave in
/// the management error shape.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ManageError))]
pub struct Body<T>(pub T);

/// Query parameters, rejected in the management error shape.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ManageError))]
pub struct Query<T>(pub T);

/// Path parameters, rejected in the management error shape.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ManageError))]
pub struct Path<T>(pub T);

pub type Result<T> = std::result::Result<T, ManageError>;
