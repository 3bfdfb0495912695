//! The `sk-…` key of a `/v1` request: where a request carries it, and an extractor that
//! authenticates it (phase 1 of the relay) before the handler runs.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use http::request::Parts;
use http::{HeaderMap, header};

use super::AppState;
use super::client_ip::ClientIp;
use super::error::ApiError;
use crate::catalog::{Catalog, KeyEntry};

/// The token after `Authorization: Bearer `. With `x_api_key` (surfaces Anthropic
/// clients call), Anthropic's `x-api-key` header comes first: an SDK sends its key there,
/// and an `Authorization` header beside it may be meant for a proxy.
pub fn api_key(headers: &HeaderMap, x_api_key: bool) -> Option<String> {
    let anthropic = || {
        let key = headers.get("x-api-key")?.to_str().ok()?.trim();
        (!key.is_empty()).then(|| key.to_string())
    };
    match x_api_key {
        true => anthropic().or_else(|| bearer(headers)),
        false => bearer(headers),
    }
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// An authenticated `/v1` caller: its key (with the owner) and the catalogue it was
/// checked against. A request without a valid key is refused before its body is read,
/// so it learns nothing about the request. `X_API_KEY` also accepts `x-api-key`.
pub struct ApiCaller<const X_API_KEY: bool = false> {
    pub catalog: Arc<Catalog>,
    pub key: Arc<KeyEntry>,
    /// The token as sent: a relayed call authenticates it again (from the key cache).
    pub token: Option<String>,
    pub client_ip: Option<IpAddr>,
}

impl<const X_API_KEY: bool> FromRequestParts<AppState> for ApiCaller<X_API_KEY> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Ok(ClientIp(client_ip)) = ClientIp::from_request_parts(parts, state).await;
        ApiCaller::authenticate(state, &parts.headers, client_ip).await
    }
}

impl<const X_API_KEY: bool> ApiCaller<X_API_KEY> {
    /// The caller of a request with these headers from `client_ip` (what the extractor
    /// does, for handlers the fast path calls: `api::relayed`).
    pub async fn authenticate(
        state: &AppState,
        headers: &HeaderMap,
        client_ip: Option<IpAddr>,
    ) -> Result<Self, ApiError> {
        let token = api_key(headers, X_API_KEY);
        let (catalog, key) = state
            .relay
            .authenticate(token.as_deref(), client_ip)
            .await?;
        Ok(ApiCaller {
            catalog,
            key,
            token,
            client_ip,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bearer_tokens_and_x_api_key_only_when_asked() {
        let mut headers = HeaderMap::new();
        assert_eq!(api_key(&headers, true), None);
        headers.insert("x-api-key", "sk-x".parse().unwrap());
        assert_eq!(api_key(&headers, false), None);
        assert_eq!(api_key(&headers, true).as_deref(), Some("sk-x"));
        headers.insert(header::AUTHORIZATION, "bearer  sk-1 ".parse().unwrap());
        assert_eq!(api_key(&headers, false).as_deref(), Some("sk-1"));
        assert_eq!(api_key(&headers, true).as_deref(), Some("sk-x"));
        headers.remove("x-api-key");
        assert_eq!(api_key(&headers, true).as_deref(), Some("sk-1"));
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(api_key(&headers, false), None);
    }
}
