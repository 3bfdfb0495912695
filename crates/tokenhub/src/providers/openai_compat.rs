//! Any OpenAI-compatible upstream: the body goes out as the relay prepared it.

use bytes::Bytes;

use super::dialect::Dialect;
use super::http::HttpClient;
use super::transport;
use super::{Deadlines, UpstreamFailure, UpstreamResponse};
use crate::catalog::Channel;

/// `{base}/chat/completions`, adding `/v1` when the base URL has no path at all
/// (`https://api.deepseek.com` → `…/v1/chat/completions`; `…/api/paas/v4` → `…/v4/chat/completions`).
pub fn endpoint(base_url: &str, operation: &str) -> String {
    let base = base_url.trim_end_matches('/');
    let has_path = base
        .split("://")
        .nth(1)
        .is_some_and(|rest| rest.contains('/'));
    let version = if has_path { "/" } else { "/v1/" };
    [base, version, operation].concat()
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
        request = request.header(http::header::AUTHORIZATION, ["Bearer ", key].concat());
    }
    let response = transport::send(client, request, body, deadlines.first_byte).await?;
    let body = transport::success_body(response, |status, body| {
        dialect.effective_status(status, body)
    })
    .await?;
    Ok(UpstreamResponse {
        body: transport::body_stream(body),
    })
}

#[cfg(test)]
mod tests {
    use super::endpoint;

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
}
