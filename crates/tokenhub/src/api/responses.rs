//! The Responses API: `POST /v1/responses` (streamed or not), `GET` and `DELETE
//! /v1/responses/{id}`, `GET /v1/responses/{id}/input_items` and `POST
//! /v1/responses/input_tokens`.
//!
//! A Responses request is translated to a chat request (`protocol::responses`) and goes
//! through the relay like any other chat, so routing, failover, limits, reservation and
//! billing are the pipeline's. With `store` (default true) the Response and the
//! conversation it ends are kept for `previous_response_id` and `GET`, owned by the key's
//! user and only theirs: another user's id answers 404, as an unknown one does. Each turn
//! is its own relayed request, billed once; a continued conversation is replayed to the
//! upstream as the prompt, as OpenAI bills it.
//!
//! Each stored row holds its own turn, linked to the one it continued (`keeper.rs`);
//! `chain.rs` walks the links back. `GET /v1/responses/{id}/input_items` lists a stored
//! response's input (`input_items.rs`).
//!
//! A request the translation refuses is answered here, before the relay, and leaves no
//! usage record, like a body the HTTP layer rejects.

mod chain;
mod input_items;
mod keeper;
mod native;
mod stream;

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{StatusCode, header};
use serde_json::{Value, json};

pub use keeper::Keeper;

use super::AppState;
use super::api_key::ApiCaller;
use super::error::ApiError;
use super::openai::pinned_channel;
use super::relayed::{BodyRejection, RelayedRequest};
use crate::catalog::KeyEntry;
use crate::protocol::openai::operation::Operation;
use crate::protocol::responses::items::conversation;
use crate::protocol::responses::{
    self, Frame, TranslateError, request_to_chat, response_from_chat,
};
use crate::relay::{Credential, RelayReply};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/responses/input_tokens", post(input_tokens))
        .route("/v1/responses/{id}", get(retrieve).delete(delete))
        .route("/v1/responses/{id}/input_items", get(input_items::list))
}

/// How long stored responses are kept (`responses_retention_days`).
#[derive(Clone, Copy, Debug)]
pub struct Retention(pub Duration);

pub(super) async fn create(state: AppState, request: RelayedRequest) -> Response {
    create_response(state, request)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn create_response(state: AppState, request: RelayedRequest) -> Result<Response, ApiError> {
    let RelayedRequest { origin, body } = request;
    // Before the body: a caller without a valid key learns nothing about its request.
    let caller = ApiCaller::<false>::authenticate(&state, &origin.headers, origin.client.0).await?;
    let (raw, request) = json_body(body)?;
    let previous_id = responses::previous_response_id(&request);
    let previous = match previous_id {
        Some(id) => Some(
            chain::load(&state.store, caller.key.user_id, id, false)
                .await?
                .ok_or_else(|| chain::previous_not_found(id))?,
        ),
        None => None,
    };
    let pinned = pinned_channel(&origin.headers);
    let model = request["model"].as_str().unwrap_or_default();
    let natively = native::served_natively(&caller.catalog, model, pinned.as_deref());
    let keeper = responses::stores(&request).then(|| keeper(&state, &caller.key, &request));
    match &previous {
        Some(stored) if stored.head.native && !natively => return Err(native::not_continuable()),
        Some(stored) if !stored.head.native => {}
        _ if natively => {
            let call =
                origin.relay_call(Operation::Responses, Credential::Bearer(caller.token), raw);
            return native::relay(&state, call, keeper).await;
        }
        _ => {}
    }
    let history = match &previous {
        Some(chain) => conversation(&chain.turns).map_err(storage_failed)?,
        None => Vec::new(),
    };
    let translation = request_to_chat(&request, &history).map_err(invalid)?;
    let frame = Frame::new(new_response_id(), unix_seconds(), &request);
    let call = origin.relay_call(
        Operation::Chat,
        Credential::Bearer(caller.token),
        Bytes::from(translation.chat.to_string()),
    );
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
        RelayReply::Stream(upstream) => {
            super::openai::event_stream(stream::responses_sse(upstream, frame, keeper))
        }
    })
}

/// What keeps this request's Response: its owner, retention, and the turn it adds.
fn keeper(state: &AppState, entry: &KeyEntry, request: &Value) -> Keeper {
    let retention = i64::try_from(state.responses_retention.0.as_millis()).unwrap_or(i64::MAX);
    Keeper {
        store: state.store.clone(),
        user_id: entry.user_id,
        key_id: entry.id,
        expires_at: crate::store::now_ms().saturating_add(retention),
        previous_id: responses::previous_response_id(request).map(str::to_string),
        input: request.get("input").cloned().unwrap_or(Value::Null),
    }
}

async fn retrieve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: ApiCaller,
) -> Result<Response, ApiError> {
    let stored = state
        .store
        .stored_response(caller.key.user_id, &id)
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
    caller: ApiCaller,
) -> Result<Response, ApiError> {
    let deleted = state
        .store
        .delete_response(caller.key.user_id, &id)
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
    ApiCaller { catalog, key, .. }: ApiCaller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (_, request) = json_body(body.map_err(BodyRejection::from))?;
    let history = match responses::previous_response_id(&request) {
        Some(previous) => {
            let chain = chain::load(&state.store, key.user_id, previous, false)
                .await?
                .ok_or_else(|| chain::previous_not_found(previous))?;
            conversation(&chain.turns).map_err(storage_failed)?
        }
        None => Vec::new(),
    };
    let translation = request_to_chat(&request, &history).map_err(invalid)?;
    let model = translation.chat["model"].as_str().unwrap_or_default();
    if catalog
        .model(model)
        .filter(|_| key.allows_model(model))
        .is_none()
    {
        return Err(crate::relay::RelayError::ModelNotFound(model.to_string()).into());
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
