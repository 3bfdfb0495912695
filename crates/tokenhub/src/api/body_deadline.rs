//! Slow clients: a request body must arrive in full within `body_read_timeout`, counted
//! from the end of its headers. Without it a client trickling one byte at a time holds a
//! connection and a task forever (the header read timeout, in `server/serve.rs`, covers
//! the headers). Every handler buffers its body anyway, so reading it here costs nothing
//! extra; the handler then gets it whole.
//!
//! A body declared larger than the limit is passed on unread, for the handler's own
//! `413`; one that grows past the limit without declaring its size is refused here.

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use http::StatusCode;

use super::admin::error::ManageError;
use super::error::ApiError;
use crate::protocol::chunks::Gathered;

#[derive(Clone, Copy, Debug)]
pub struct BodyPolicy {
    pub read_timeout: Duration,
    pub max_bytes: usize,
}

pub enum Refusal {
    TooSlow,
    TooLarge,
    Broken,
}

pub async fn read_in_time(policy: BodyPolicy, request: Request, next: Next) -> Response {
    let unread = match declared_length(request.headers()) {
        Some(0) => true,
        Some(length) => length > policy.max_bytes as u64,
        None => !request
            .headers()
            .contains_key(http::header::TRANSFER_ENCODING),
    };
    if unread {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    match collect(body, policy).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(refusal) => refuse(parts.uri.path(), refusal, policy),
    }
}

fn declared_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// A body declared larger than the limit is refused unread.
pub fn declared_too_large(policy: BodyPolicy, headers: &http::HeaderMap) -> bool {
    declared_length(headers).is_some_and(|length| length > policy.max_bytes as u64)
}

/// The whole body, within the policy's deadline (from now) and size limit.
pub async fn collect<B>(body: B, policy: BodyPolicy) -> Result<Bytes, Refusal>
where
    B: hyper::body::Body<Data = Bytes>,
{
    let deadline = tokio::time::Instant::now() + policy.read_timeout;
    let stream = http_body_util::BodyDataStream::new(body);
    let mut stream = std::pin::pin!(stream);
    let mut gathered = Gathered::default();
    let sleep = tokio::time::sleep_until(deadline);
    tokio::pin!(sleep);
    loop {
        let chunk = tokio::select! {
            biased;
            next = stream.next() => next,
            () = &mut sleep => return Err(Refusal::TooSlow),
        };
        match chunk {
            None => return Ok(gathered.finish()),
            Some(Err(_)) => return Err(Refusal::Broken),
            Some(Ok(chunk)) => {
                if gathered.push(chunk) > policy.max_bytes {
                    return Err(Refusal::TooLarge);
                }
            }
        }
    }
}

/// In the shape of the surface the request was for: management errors under `/api/`
/// (whose documented codes have no 408: `invalid_request`), OpenAI errors elsewhere.
pub fn refuse(path: &str, refusal: Refusal, policy: BodyPolicy) -> Response {
    let (status, code, message) = match refusal {
        Refusal::TooSlow => (
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "The request body did not arrive within {} ms.",
                policy.read_timeout.as_millis()
            ),
        ),
        Refusal::TooLarge => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            format!(
                "The request body is larger than {} bytes.",
                policy.max_bytes
            ),
        ),
        Refusal::Broken => (
            StatusCode::BAD_REQUEST,
            "request_body_unreadable",
            "The request body could not be read.".to_string(),
        ),
    };
    let mut response = if path.starts_with("/api/") {
        ManageError::invalid(message).into_response()
    } else {
        ApiError::new(status, "invalid_request_error", Some(code), None, message).into_response()
    };
    // The rest of the body was never read: this connection cannot carry another request.
    response.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    response
}
