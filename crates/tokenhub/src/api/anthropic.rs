//! The Anthropic-compatible surface: `POST /v1/messages` and
//! `POST /v1/messages/count_tokens`, so Anthropic SDKs and Claude Code can use the
//! gateway with the same `sk-` keys, served by any upstream.
//!
//! A Messages request is translated to an OpenAI chat request
//! (`protocol::anthropic::inbound`) and goes through the relay like any other chat, so
//! routing, failover, limits and billing are unchanged (the record's model is the
//! public model). The answer is translated back, streams event by event.
//!
//! A request the translation refuses is answered here, before the relay, and leaves no
//! usage record, like a body the HTTP layer rejects. `anthropic-version` and
//! `anthropic-beta` are accepted and ignored.

mod error;
mod stream;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::AppState;
use super::api_key::api_key;
use super::openai::ClientIp;
use super::relayed::{BodyRejection, RelayedRequest, RequestOrigin};
use crate::protocol::anthropic::TranslateError;
use crate::protocol::anthropic::inbound::{InboundRequest, message_from_openai, request_to_openai};
use crate::protocol::openai::operation::Operation;
use crate::relay::{Credential, RelayError, RelayReply};
pub use error::AnthropicError;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/messages/count_tokens", post(count_tokens))
}

/// Authenticates, then parses and translates the body into an OpenAI chat request.
async fn translate(
    state: &AppState,
    client: &ClientIp,
    headers: &HeaderMap,
    body: Result<Bytes, BodyRejection>,
) -> Result<(Option<String>, InboundTranslation), AnthropicError> {
    let key = api_key(headers, true);
    // Before the body: a caller without a valid key learns nothing about its request.
    state.relay.authenticate(key.as_deref(), client.0).await?;
    let body =
        body.map_err(|rejection| AnthropicError::new(rejection.status, rejection.message))?;
    let request = InboundRequest::parse(&body).map_err(invalid)?;
    Ok((key, to_chat(request)?))
}

/// The chat request a Messages request stands for.
fn to_chat(request: InboundRequest) -> Result<InboundTranslation, AnthropicError> {
    let model = request.model.clone();
    let chat = request_to_openai(request).map_err(invalid)?;
    Ok(InboundTranslation { model, chat })
}

struct InboundTranslation {
    model: String,
    chat: Value,
}

fn invalid(error: TranslateError) -> AnthropicError {
    AnthropicError::invalid_request(error.message)
}

/// Anthropic SDKs read the request id from `request-id` (e.g. `message._request_id`), so
/// the gateway's id is given under that name too, on answers and errors alike.
pub(super) async fn messages(state: AppState, request: RelayedRequest) -> Response {
    let RelayedRequest { origin, body } = request;
    let id = http::HeaderValue::from_str(&origin.request_id).ok();
    let mut response = relay_message(state, origin, body)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    if let Some(id) = id {
        response.headers_mut().insert("request-id", id);
    }
    response
}

async fn relay_message(
    state: AppState,
    origin: RequestOrigin,
    body: Result<Bytes, BodyRejection>,
) -> Result<Response, AnthropicError> {
    let (key, translated) = translate(&state, &origin.client, &origin.headers, body).await?;
    let body = Bytes::from(translated.chat.to_string());
    // For `message_start`; bounded like the settlement's own estimate (`tokens`).
    let input_tokens = if translated.chat.get("stream") == Some(&Value::Bool(true)) {
        crate::tokens::count_chat_prompt(&body, crate::tokens::Budget::SERVING_THREAD)
    } else {
        0
    };
    let call = origin.relay_call(Operation::Chat, Credential::Bearer(key), body);
    Ok(match state.relay.relay(call).await? {
        RelayReply::Json { body, charge, .. } => {
            let message = message_from_openai(&body)
                .map_err(|e| AnthropicError::new(StatusCode::BAD_GATEWAY, e.message))?;
            let mut response = axum::Json(message).into_response();
            super::openai::stamp_cost(&mut response, charge);
            response
        }
        RelayReply::Stream(upstream) => {
            super::openai::event_stream(stream::anthropic_sse(upstream, input_tokens))
        }
    })
}

/// Counted locally (o200k, as for unreported usage) over the translated messages and
/// tools; an estimate for non-OpenAI tokenizers. On the blocking pool, with its larger
/// exact budget: a big prompt must not hold up the serving thread.
async fn count_tokens(
    State(state): State<AppState>,
    client: ClientIp,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AnthropicError> {
    let key = api_key(&headers, true);
    let (catalog, entry) = state.relay.authenticate(key.as_deref(), client.0).await?;
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        AnthropicError::new(status, rejection.body_text())
    })?;
    let translated = to_chat(count_tokens_request(&body)?)?;
    if catalog
        .model(&translated.model)
        .filter(|_| entry.allows_model(&translated.model))
        .is_none()
    {
        return Err(RelayError::ModelNotFound(translated.model).into());
    }
    let tokens = count_off_thread(translated.chat).await.ok_or_else(|| {
        AnthropicError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "The gateway could not count the tokens of this request; retry.",
        )
    })?;
    Ok(axum::Json(json!({"input_tokens": tokens})).into_response())
}

/// The prompt tokens of a chat request (messages and tools), counted on the blocking pool;
/// `None` if the count could not run. Shared by the count endpoints of every surface.
pub(super) async fn count_off_thread(chat: Value) -> Option<u64> {
    // A 1 MiB count takes up to about a second of CPU: two at a time, the others wait
    // their turn here without holding a thread.
    static COUNTING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
    let _turn = COUNTING.acquire().await;
    tokio::task::spawn_blocking(move || count_input_tokens(&chat))
        .await
        .ok()
}

/// Anthropic's count_tokens takes a Messages request without `max_tokens` (the SDKs never
/// send one); the Messages parser requires it, so a count borrows a placeholder, which
/// nothing counted depends on.
fn count_tokens_request(body: &[u8]) -> Result<InboundRequest, AnthropicError> {
    let mut request: Value = serde_json::from_slice(body)
        .map_err(|e| AnthropicError::invalid_request(format!("invalid JSON body: {e}")))?;
    if let Some(object) = request.as_object_mut() {
        object.entry("max_tokens").or_insert(json!(1));
    }
    InboundRequest::parse(request.to_string().as_bytes()).map_err(invalid)
}

fn count_input_tokens(chat: &Value) -> u64 {
    use crate::tokens::{Budget, Tally, count_chat_prompt};
    let mut tokens = count_chat_prompt(chat.to_string().as_bytes(), Budget::BLOCKING_POOL);
    if let Some(tools) = chat.get("tools") {
        let mut tally = Tally::new(Budget::BLOCKING_POOL);
        tally.text(&tools.to_string());
        tokens += tally.total();
    }
    tokens
}
