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
    let mut hex = uuid::Uuid::encode_buffer();
    let id = ["req_", uuid::Uuid::now_v7().simple().encode_lower(&mut hex)].concat();
    let header = HeaderValue::from_str(&id).ok();
    (id, header)
}

pub fn stamp(response: &mut Response, header: Option<HeaderValue>) {
    if let Some(value) = header {
        response.headers_mut().insert("x-request-id", value);
    }
}

#[cfg(test)]
mod tests {
    use super::new;

    #[test]
    fn an_id_is_req_and_a_uuid_in_lowercase_hex_and_its_header_says_the_same() {
        let (id, header) = new();
        let hex = id.strip_prefix("req_").unwrap();
        assert_eq!(hex.len(), 32);
        assert!(
            hex.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_eq!(uuid::Uuid::parse_str(hex).unwrap().get_version_num(), 7);
        assert_eq!(header.unwrap(), id.as_str());
        assert_ne!(new().0, id, "each request its own");
    }
}
