//! Any OpenAI-compatible upstream: the body goes out as the relay prepared it.

use bytes::Bytes;

use super::dialect::Dialect;
use super::http::HttpClient;
use super::transport;
use super::{Deadlines, FailureKind, UpstreamFailure, UpstreamResponse};
use crate::catalog::Channel;
use crate::protocol::openai::error::upstream_error_message;

/// `{base}/chat/completions`, adding `/v1` when the base URL has no path at all
/// (`https://api.deepseek.com` → `…/v1/chat/completions`; `…/api/paas/v4` → `…/v4/chat/completions`).
pub fn endpoint(base_url: &str, operation: &str) -> String {
    let base = base_url.trim_end_matches('/');
    let has_path = base
        .split("://")
        .nth(1)
        .is_some_and(|rest| rest.contains('/'));
    if has_path {
        format!("{base}/{operation}")
    } else {
        format!("{base}/v1/{operation}")
    }
}

/// POSTs `body` to `{base}/{path}` (e.g. `chat/completions`, `embeddings`).
pub async fn send(
    client: &HttpClient,
    channel: &Channel,
    key: Option<&str>,
    dialect: Dialect,
    path: &str,
    body: Bytes,
    deadlines: Deadlines,
) -> Result<UpstreamResponse, UpstreamFailure> {
    let mut request = transport::json_post(channel.urls.parse(endpoint(&channel.base_url, path))?);
    if let Some(key) = key {
        request = request.header(http::header::AUTHORIZATION, format!("Bearer {key}"));
    }
    let response = transport::send(client, request, body, deadlines.first_byte).await?;
    let status = response.status();
    if !status.is_success() {
        let retry_after = retry_after(response.headers());
        let body = transport::read_error_body(response.into_body()).await;
        let code = dialect.effective_status(status.as_u16(), &body);
        let message = upstream_error_message(&body)
            .unwrap_or_else(|| format!("upstream returned HTTP {code}"));
        return Err(UpstreamFailure {
            retry_after,
            ..UpstreamFailure::new(FailureKind::Status(code), message)
        });
    }
    Ok(UpstreamResponse {
        body: transport::body_stream(response.into_body()),
    })
}

/// `retry-after-ms` (OpenAI) or `retry-after` in seconds; HTTP dates are rare here and ignored.
pub fn retry_after(headers: &http::HeaderMap) -> Option<std::time::Duration> {
    let number = |name: &str| {
        headers
            .get(name)?
            .to_str()
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    if let Some(ms) = number("retry-after-ms") {
        return Some(std::time::Duration::from_secs_f64(ms / 1000.0));
    }
    number("retry-after").map(|secs| std::time::Duration::from_secs_f64(secs.min(86_400.0)))
}

#[cfg(test)]
mod tests {
    use super::{endpoint, retry_after};

    #[test]
    fn joins_base_urls_like_the_vendors_document_them() {
        assert_eq!(
            endpoint("https://api.deepseek.com", "chat/completions"),
            "https://api.deepseek.com/v1/chat/completions"
        );
        assert_eq!(
            endpoint("https://api.deepseek.com/", "models"),
            "https://api.deepseek.com/v1/models"
        );
        assert_eq!(
            endpoint("https://open.bigmodel.cn/api/paas/v4", "chat/completions"),
            "https://open.bigmodel.cn/api/paas/v4/chat/completions"
        );
        assert_eq!(
            endpoint("http://127.0.0.1:9/v1/", "chat/completions"),
            "http://127.0.0.1:9/v1/chat/completions"
        );
    }

    #[test]
    fn reads_retry_after_in_either_spelling() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert("retry-after", "7".parse().unwrap());
        assert_eq!(
            retry_after(&headers),
            Some(std::time::Duration::from_secs(7))
        );
        headers.insert("retry-after-ms", "250".parse().unwrap());
        assert_eq!(
            retry_after(&headers),
            Some(std::time::Duration::from_millis(250))
        );
        headers.insert("retry-after-ms", "soon".parse().unwrap());
        headers.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
