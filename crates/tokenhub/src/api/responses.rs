//! The Responses API: `POST /v1/responses` (streamed or not), `GET` and `DELETE
//! /v1/responses/{id}`, and `POST /v1/responses/input_tokens`.
//!
//! A Responses request is translated to a chat request (`protocol::responses`) and goes
//! through the relay like any other chat, so routing, failover, limits, reservation and
//! billing are the pipeline's. With `store` (default true) the Response and the
//! conversation it ends are kept for `previous_response_id` and `GET`, owned by the key's
//! user and only theirs: another user's id answers 404, as an unknown one does. Each turn
//! is its own relayed request, billed once; a continued conversation is replayed to the
//! upstream as the prompt, as OpenAI bills it.
//!
//! A request the translation refuses is answered here, before the relay, and leaves no
//! usage record, like a body the HTTP layer rejects.

mod native;
mod stream;

use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::openai::{ClientIp, bearer, pinned_channel};
use super::relayed::{BodyRejection, RelayedRequest};
use crate::catalog::KeyEntry;
use crate::protocol::openai::operation::Operation;
use crate::protocol::responses::{
    self, Frame, TranslateError, assistant_message, request_to_chat, response_from_chat,
};
use crate::relay::{Credential, RelayCall, RelayError, RelayReply};
use crate::store::{NewStoredResponse, Store, StoredResponse};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/responses/input_tokens", post(input_tokens))
        .route("/v1/responses/{id}", get(retrieve).delete(delete))
}

/// How long stored responses are kept (`responses_retention_days`).
#[derive(Clone, Copy, Debug)]
pub struct Retention(pub Duration);

/// Where a finished Response is kept, when the request asked for it.
#[derive(Clone)]
pub struct Keeper {
    store: Store,
    user_id: i64,
    key_id: i64,
    expires_at: i64,
    /// The conversation through this turn's input; the answer is appended to it.
    conversation: Vec<Value>,
}

impl Keeper {
    /// Stores `response` with the conversation it ends. A failure is logged, not
    /// answered: the client has its Response, and only a later continuation misses it.
    pub async fn keep(mut self, response: &Value) {
        let mut conversation = std::mem::take(&mut self.conversation);
        match assistant_message(response) {
            Ok(messages) => conversation.extend(messages),
            Err(error) => tracing::warn!(%error, "cannot store a response's output"),
        }
        self.save(response, &Value::Array(conversation), false)
            .await;
    }

    /// Records a native channel's Response: the upstream holds its conversation; the row
    /// says whose id it is, so only its owner may continue it (`previous_response_id`).
    pub async fn keep_native(self, response: &Value) {
        self.save(response, &Value::Array(Vec::new()), true).await;
    }

    async fn save(&self, response: &Value, conversation: &Value, native: bool) {
        let id = response["id"].as_str().unwrap_or_default();
        if id.is_empty() {
            tracing::warn!("a response without an id cannot be stored");
            return;
        }
        let stored = self
            .store
            .save_response(NewStoredResponse {
                id,
                user_id: self.user_id,
                key_id: self.key_id,
                response: &response.to_string(),
                conversation: &conversation.to_string(),
                expires_at: self.expires_at,
                native,
            })
            .await;
        if let Err(error) = stored {
            tracing::warn!(%error, response = id, "cannot store a response");
        }
    }
}

pub(super) async fn create(state: AppState, request: RelayedRequest) -> Response {
    create_response(state, request)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn create_response(state: AppState, request: RelayedRequest) -> Result<Response, ApiError> {
    let RelayedRequest {
        request_id,
        client,
        headers,
        body,
    } = request;
    let key = bearer(&headers);
    // Before the body: a caller without a valid key learns nothing about its request.
    let (catalog, entry) = state.relay.authenticate(key.as_deref(), client.0).await?;
    let (raw, request) = json_body(body)?;
    let previous = match responses::previous_response_id(&request) {
        Some(previous) => Some(stored_of(&state.store, entry.user_id, previous).await?),
        None => None,
    };
    let pinned = pinned_channel(&headers);
    let model = request["model"].as_str().unwrap_or_default();
    let natively = native::served_natively(&catalog, model, pinned.as_deref());
    match &previous {
        Some(stored) if stored.native && !natively => return Err(native::not_continuable()),
        Some(stored) if !stored.native => {}
        _ if natively => {
            let keeper = responses::stores(&request).then(|| keeper(&state, &entry, Vec::new()));
            let call = RelayCall {
                pinned_channel: pinned,
                operation: Operation::Responses,
                request_id,
                credential: Credential::Bearer(key),
                body: raw,
                client_ip: client.0,
            };
            return native::relay(&state, call, keeper).await;
        }
        _ => {}
    }
    let history = match &previous {
        Some(stored) => conversation_in(stored)?,
        None => Vec::new(),
    };
    let translation = request_to_chat(&request, &history).map_err(invalid)?;
    let frame = Frame::new(new_response_id(), unix_seconds(), &request);
    let keeper = responses::stores(&request).then(|| {
        let mut conversation = history;
        conversation.extend(translation.turn);
        keeper(&state, &entry, conversation)
    });
    let call = RelayCall {
        pinned_channel: pinned,
        operation: Operation::Chat,
        request_id,
        credential: Credential::Bearer(key),
        body: Bytes::from(translation.chat.to_string()),
        client_ip: client.0,
    };
    Ok(match state.relay.relay(call).await? {
        RelayReply::Json { body, charge, .. } => {
            let response = response_from_chat(&frame, &body).map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "upstream_error",
                    Some("upstream_error"),
                    None,
                    e.message,
                )
            })?;
            if let Some(keeper) = keeper {
                keeper.keep(&response).await;
            }
            let mut answer = axum::Json(response).into_response();
            super::openai::stamp_cost(&mut answer, charge);
            answer
        }
        RelayReply::Stream(upstream) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "text/event-stream; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
                (header::HeaderName::from_static("x-accel-buffering"), "no"),
            ],
            Body::from_stream(stream::responses_sse(upstream, frame, keeper)),
        )
            .into_response(),
    })
}

fn keeper(state: &AppState, entry: &KeyEntry, conversation: Vec<Value>) -> Keeper {
    let retention = i64::try_from(state.responses_retention.0.as_millis()).unwrap_or(i64::MAX);
    Keeper {
        store: state.store.clone(),
        user_id: entry.user_id,
        key_id: entry.id,
        expires_at: crate::store::now_ms().saturating_add(retention),
        conversation,
    }
}

/// The stored conversation `previous_response_id` continues: the caller's own only.
async fn conversation_of(
    store: &Store,
    user_id: i64,
    previous: &str,
) -> Result<Vec<Value>, ApiError> {
    conversation_in(&stored_of(store, user_id, previous).await?)
}

/// The stored response `previous_response_id` names: the caller's own only (another
/// user's id is a 404, as an unknown one is).
async fn stored_of(
    store: &Store,
    user_id: i64,
    previous: &str,
) -> Result<StoredResponse, ApiError> {
    store
        .stored_response(user_id, previous)
        .await
        .map_err(storage_failed)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                Some("previous_response_not_found"),
                Some("previous_response_id"),
                format!("Previous response with id '{previous}' not found."),
            )
        })
}

fn conversation_in(stored: &StoredResponse) -> Result<Vec<Value>, ApiError> {
    serde_json::from_str(&stored.conversation).map_err(|error| {
        tracing::error!(%error, response = stored.id, "a stored conversation is unreadable");
        storage_failed(error)
    })
}

async fn retrieve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ClientIp(client_ip): ClientIp,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (_, entry) = state
        .relay
        .authenticate(bearer(&headers).as_deref(), client_ip)
        .await?;
    let stored = state
        .store
        .stored_response(entry.user_id, &id)
        .await
        .map_err(storage_failed)?
        .ok_or_else(|| not_found(&id))?;
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        stored.response,
    )
        .into_response())
}

async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ClientIp(client_ip): ClientIp,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (_, entry) = state
        .relay
        .authenticate(bearer(&headers).as_deref(), client_ip)
        .await?;
    let deleted = state
        .store
        .delete_response(entry.user_id, &id)
        .await
        .map_err(storage_failed)?;
    if !deleted {
        return Err(not_found(&id));
    }
    Ok(axum::Json(json!({"id": id, "object": "response", "deleted": true})).into_response())
}

/// Counted locally (o200k, as for unreported usage) over the translated chat request.
async fn input_tokens(
    State(state): State<AppState>,
    ClientIp(client_ip): ClientIp,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (catalog, entry) = state
        .relay
        .authenticate(bearer(&headers).as_deref(), client_ip)
        .await?;
    let (_, request) = json_body(body.map_err(BodyRejection::from))?;
    let history = match responses::previous_response_id(&request) {
        Some(previous) => conversation_of(&state.store, entry.user_id, previous).await?,
        None => Vec::new(),
    };
    let translation = request_to_chat(&request, &history).map_err(invalid)?;
    let model = translation.chat["model"].as_str().unwrap_or_default();
    if catalog
        .model(model)
        .filter(|_| entry.allows_model(model))
        .is_none()
    {
        return Err(RelayError::ModelNotFound(model.to_string()).into());
    }
    let tokens = super::anthropic::count_off_thread(translation.chat)
        .await
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                None,
                None,
                "The gateway could not count the tokens of this request; retry.",
            )
        })?;
    Ok(
        axum::Json(json!({"object": "response.input_tokens", "input_tokens": tokens}))
            .into_response(),
    )
}

/// The body as received (a native channel is sent it unchanged) and parsed.
fn json_body(body: Result<Bytes, BodyRejection>) -> Result<(Bytes, Value), ApiError> {
    let body = body?;
    let value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::invalid_request(
            StatusCode::BAD_REQUEST,
            format!("We could not parse the JSON body of your request: {e}"),
        )
    })?;
    Ok((body, value))
}

fn invalid(error: TranslateError) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        None,
        error.param.as_deref(),
        error.message,
    )
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        None,
        None,
        format!("Response with id '{id}' not found."),
    )
}

fn storage_failed(error: impl std::fmt::Display) -> ApiError {
    tracing::error!(%error, "stored responses are unavailable");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "server_error",
        None,
        None,
        "Stored responses are unavailable; retry.",
    )
}

/// `resp_` and 128 random bits, hex: unguessable, as the id is all a reader needs besides
/// their own key.
fn new_response_id() -> String {
    format!("resp_{:032x}", rand::random::<u128>())
}

fn unix_seconds() -> i64 {
    crate::store::now_ms() / 1000
}
