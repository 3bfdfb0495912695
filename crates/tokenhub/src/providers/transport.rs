//! What every HTTP adapter shares: reading an error body within bounds, and turning
//! transport errors into `UpstreamFailure`s with their root cause. Channel keys travel in
//! headers, never in URLs, so a root cause never shows a credential.

use super::{FailureKind, UpstreamFailure};

/// An upstream error body is read up to this size for its message.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

pub async fn read_error_body(mut response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() >= ERROR_BODY_LIMIT {
            body.truncate(ERROR_BODY_LIMIT);
            break;
        }
    }
    body
}

/// A request that got no answer: connect failure, timeout, or a connection lost early.
pub fn send_failure(error: &reqwest::Error) -> UpstreamFailure {
    let kind = if error.is_timeout() {
        FailureKind::Timeout
    } else if error.is_connect() {
        FailureKind::Connect
    } else {
        FailureKind::Broken
    };
    UpstreamFailure::new(
        kind,
        format!("cannot reach upstream: {}", root_cause(error)),
    )
}

/// A body that broke while it was being read.
pub fn body_failure(error: &reqwest::Error) -> UpstreamFailure {
    UpstreamFailure::new(
        FailureKind::Broken,
        format!("upstream connection broke: {}", root_cause(error)),
    )
}

/// The innermost cause, which is the informative part (e.g. "Connection refused").
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Seconds since the Unix epoch, for the `created` of translated answers.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
