//! The one error type of the HTTP surfaces: it renders OpenAI's error body with the right
//! status, whatever went wrong (relay refusal, upstream failure, bad body, unknown route).

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;

use crate::protocol::openai::error::{ErrorBody, ErrorObject};
use crate::providers::FailureKind;
use crate::relay::RelayError;
use crate::relay::error::default_retry_after;
use crate::relay::limits::{LimitKind, Limited};

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    /// Boxed: keeps `Result<_, ApiError>` small on the success path.
    body: Box<ErrorObject>,
    retry_after: Option<std::time::Duration>,
    /// Extra headers, e.g. OpenAI's `x-ratelimit-*` on a rate-limit refusal.
    headers: Vec<(&'static str, String)>,
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
            body: Box::new(ErrorObject {
                message: message.into(),
                kind: kind.to_string(),
                param: param.map(str::to_string),
                code: code.map(str::to_string),
            }),
            retry_after: default_retry_after(status.as_u16()),
            headers: Vec::new(),
        }
    }

    pub fn invalid_request(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError::new(status, "invalid_request_error", None, None, message)
    }

    /// The same error as an end user of the web app reads it: failures that are the
    /// operator's to fix (no channel, a key missing from the environment, an upstream
    /// refusing connections) become a plain sentence; the detail stays in the logs, the
    /// usage record and the admin panel.
    pub fn for_end_user(mut self) -> Self {
        if let Some(plain) = plain_failure(self.status.as_u16()) {
            self.body.message = plain.to_string();
        }
        self
    }

    /// Adds `Retry-After` (whole seconds, rounded up).
    pub fn with_retry_after(mut self, wait: std::time::Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }
}

/// What an end user is told about a failure on the operator's side (any 5xx).
pub fn plain_failure(status: u16) -> Option<&'static str> {
    (500..=599).contains(&status).then_some(
        "This model is not available right now: the service could not get an answer from \
         its provider. Try again in a moment or choose another model.",
    )
}

impl From<RelayError> for ApiError {
    fn from(error: RelayError) -> Self {
        let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_GATEWAY);
        let message = error.to_string();
        let (kind, code, param) = match &error {
            RelayError::Unauthenticated(_) => {
                ("invalid_request_error", Some("invalid_api_key"), None)
            }
            RelayError::KeyLookupThrottled { .. } => {
                ("rate_limit_error", Some("key_lookups_exceeded"), None)
            }
            RelayError::KeyLookupFailed => {
                ("service_unavailable_error", Some("key_lookup_failed"), None)
            }
            RelayError::SharedStateUnavailable => (
                "service_unavailable_error",
                Some("shared_state_unavailable"),
                None,
            ),
            RelayError::LedgerBacklog => (
                "service_unavailable_error",
                Some("ledger_backlog_full"),
                None,
            ),
            RelayError::InvalidRequest(invalid) => ("invalid_request_error", None, invalid.param),
            RelayError::ModelNotFound(_) => (
                "invalid_request_error",
                Some("model_not_found"),
                Some("model"),
            ),
            RelayError::Unsupported { .. } => (
                "invalid_request_error",
                Some("unsupported_operation"),
                Some("model"),
            ),
            RelayError::Insufficient(_) => ("insufficient_quota", Some("insufficient_quota"), None),
            RelayError::NoChannel { .. } | RelayError::KeysRejected { .. } => (
                "service_unavailable_error",
                Some("model_not_available"),
                Some("model"),
            ),
            RelayError::CoolingDown { .. } => (
                "service_unavailable_error",
                Some("channels_cooling_down"),
                Some("model"),
            ),
            RelayError::Saturated { .. } => ("rate_limit_error", Some("channel_saturated"), None),
            RelayError::RateLimited(limited) => match limited.kind {
                LimitKind::Requests => ("requests", Some("rate_limit_exceeded"), None),
                LimitKind::Tokens => ("tokens", Some("rate_limit_exceeded"), None),
            },
            RelayError::IpNotAllowed(_) => ("permission_error", Some("ip_not_allowed"), None),
            RelayError::Forbidden(_) => ("permission_error", Some("forbidden"), None),
            RelayError::ChannelNotServing { .. } => (
                "invalid_request_error",
                Some("channel_not_serving_model"),
                None,
            ),
            RelayError::Upstream(failure) => match failure.kind {
                FailureKind::Status(400 | 413 | 422) => ("invalid_request_error", None, None),
                FailureKind::Status(429) => ("rate_limit_error", Some("rate_limit_exceeded"), None),
                FailureKind::Timeout => ("upstream_error", Some("upstream_timeout"), None),
                _ => ("upstream_error", Some("upstream_error"), None),
            },
        };
        let headers = match &error {
            RelayError::RateLimited(limited) => rate_limit_headers(limited),
            _ => Vec::new(),
        };
        ApiError {
            retry_after: error.retry_after(),
            headers,
            ..ApiError::new(status, kind, code, param, message)
        }
    }
}

/// OpenAI's names: `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`, reset as "1.5s".
fn rate_limit_headers(limited: &Limited) -> Vec<(&'static str, String)> {
    let seconds = format!("{:.3}", limited.retry_after.as_secs_f64());
    let reset = format!("{}s", seconds.trim_end_matches('0').trim_end_matches('.'));
    match limited.kind {
        LimitKind::Requests => vec![
            ("x-ratelimit-limit-requests", limited.limit.to_string()),
            (
                "x-ratelimit-remaining-requests",
                limited.remaining.to_string(),
            ),
            ("x-ratelimit-reset-requests", reset),
        ],
        LimitKind::Tokens => vec![
            ("x-ratelimit-limit-tokens", limited.limit.to_string()),
            (
                "x-ratelimit-remaining-tokens",
                limited.remaining.to_string(),
            ),
            ("x-ratelimit-reset-tokens", reset),
        ],
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(ErrorBody { error: *self.body })).into_response();

        if let Some(wait) = self.retry_after {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, retry_after_value(wait));
        }
        for (name, value) in self.headers {
            if let Ok(value) = http::HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}

/// Whole seconds, rounded up, at least 1: "0" would invite an immediate retry.
pub fn seconds_rounded_up(wait: std::time::Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// The `Retry-After` header's value for a wait (every surface's).
pub fn retry_after_value(wait: std::time::Duration) -> http::HeaderValue {
    http::HeaderValue::from(seconds_rounded_up(wait))
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::response::IntoResponse;

    use super::*;
    use crate::api::admin::error::{Code, ManageError};
    use crate::api::anthropic::AnthropicError;
    use crate::ledger::books::Refusal;
    use crate::ledger::money::Nanos;
    use crate::providers::UpstreamFailure;

    fn answer(error: impl IntoResponse) -> (u16, Option<String>) {
        let response = error.into_response();
        let wait = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_string());
        (response.status().as_u16(), wait)
    }

    /// The relay's refusals for now, fresh each time (errors are not `Clone`).
    fn refusals_for_now() -> Vec<RelayError> {
        let upstream =
            |status| RelayError::Upstream(UpstreamFailure::new(FailureKind::Status(status), "x"));
        vec![
            RelayError::SharedStateUnavailable,
            RelayError::KeyLookupFailed,
            RelayError::LedgerBacklog,
            RelayError::NoChannel {
                model: "m".into(),
                missing: Vec::new(),
            },
            RelayError::KeysRejected { model: "m".into() },
            upstream(503),
            upstream(429),
        ]
    }

    #[test]
    fn every_503_and_429_names_a_wait_on_every_surface_but_an_empty_balance() {
        for (openai, anthropic) in refusals_for_now().into_iter().zip(refusals_for_now()) {
            let what = format!("{openai:?}");
            for (status, wait) in [
                answer(ApiError::from(openai)),
                answer(AnthropicError::from(anthropic)),
            ] {
                assert!(matches!(status, 429 | 503), "{what}: {status}");
                let seconds: u64 = wait
                    .unwrap_or_else(|| panic!("{what}: no Retry-After"))
                    .parse()
                    .unwrap();
                assert!(seconds >= 1, "{what}");
            }
        }
        let ad_hoc = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            None,
            None,
            "x",
        );
        assert_eq!(answer(ad_hoc), (503, Some("1".into())));
        let anthropic = AnthropicError::new(StatusCode::SERVICE_UNAVAILABLE, "x");
        assert_eq!(answer(anthropic), (503, Some("1".into())));
        let manage = ManageError::new(Code::Unavailable, "x");
        assert_eq!(answer(manage), (503, Some("1".into())));

        let empty = RelayError::Insufficient(Refusal::Balance {
            available: Nanos(0),
            needed: Nanos(5),
        });
        assert_eq!(
            answer(ApiError::from(empty)),
            (429, None),
            "no wait refills a balance"
        );
        let invalid = ApiError::invalid_request(StatusCode::BAD_REQUEST, "x");
        assert_eq!(answer(invalid), (400, None));
    }

    #[test]
    fn a_wait_is_whole_seconds_rounded_up() {
        let limited = |wait| {
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "requests", None, None, "x")
                .with_retry_after(wait)
        };
        assert_eq!(
            answer(limited(Duration::from_millis(1_200))).1.as_deref(),
            Some("2")
        );
        assert_eq!(
            answer(limited(Duration::from_secs(3))).1.as_deref(),
            Some("3")
        );
        assert_eq!(answer(limited(Duration::ZERO)).1.as_deref(), Some("1"));
    }
}
