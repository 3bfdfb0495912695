//! OpenAI's error body, `{"error":{"message","type","param","code"}}`, and reading the many
//! error shapes upstreams send back.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorObject,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorObject {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub param: Option<String>,
    pub code: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum UpstreamError {
    Nested { error: Nested },
    Flat { message: String },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Nested {
    Object {
        #[serde(default)]
        message: Option<String>,
        #[serde(default)]
        msg: Option<String>,
    },
    Text(String),
}

/// The human message inside an upstream error body, whatever its dialect; bounded in length.
pub fn upstream_error_message(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?.trim();
    let message = match serde_json::from_str::<UpstreamError>(text) {
        Ok(UpstreamError::Nested {
            error: Nested::Object { message, msg },
        }) => message.or(msg)?,
        Ok(UpstreamError::Nested {
            error: Nested::Text(message),
        }) => message,
        Ok(UpstreamError::Flat { message }) => message,
        Err(_) if !text.is_empty() && !text.starts_with('<') => text.to_string(),
        Err(_) => return None,
    };
    const LIMIT: usize = 1000;
    Some(match message.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_dialect() {
        assert_eq!(
            upstream_error_message(br#"{"error":{"message":"bad","type":"x"}}"#).as_deref(),
            Some("bad")
        );
        assert_eq!(
            upstream_error_message(br#"{"error":{"code":"1301","message":"unsafe"}}"#).as_deref(),
            Some("unsafe")
        );
        assert_eq!(
            upstream_error_message(br#"{"error":"plain"}"#).as_deref(),
            Some("plain")
        );
        assert_eq!(
            upstream_error_message(br#"{"message":"flat"}"#).as_deref(),
            Some("flat")
        );
        assert_eq!(
            upstream_error_message(b"upstream text").as_deref(),
            Some("upstream text")
        );
        assert_eq!(upstream_error_message(b"<html>502</html>"), None);
        assert_eq!(upstream_error_message(b""), None);
        assert_eq!(
            upstream_error_message(&[b'x'; 2000])
                .unwrap()
                .chars()
                .count(),
            1001
        );
    }
}
