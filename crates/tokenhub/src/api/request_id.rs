//! Every response carries an `x-request-id`; the same id names the request's usage record
//! and log line.

use axum::extract::Request;
use axum::response::Response;
use http::HeaderValue;

/// The id of the request being served, available to handlers as an extension.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// Names the request (time-ordered, so usage records are appended in index order) and
/// answers the header value its response will carry.
pub fn assign(request: &mut Request) -> Option<HeaderValue> {
    let (id, header) = new();
    request.extensions_mut().insert(RequestId(id));
    header
}

/// A new request id, and the header value that carries it.
pub fn new() -> (String, Option<HeaderValue>) {
    let id = format!("req_{}", uuid::Uuid::now_v7().simple());
    let header = HeaderValue::from_str(&id).ok();
    (id, header)
}

pub fn stamp(response: &mut Response, header: Option<HeaderValue>) {
    if let Some(value) = header {
        response.headers_mut().insert("x-request-id", value);
    }
}
