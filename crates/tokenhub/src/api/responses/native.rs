//! `/v1/responses` passed through to a channel that serves it natively (OpenAI's own
//! API, `responses_native`): the body goes through the relay as `Operation::Responses`
//! (routing, limits, reservation and billing are the pipeline's) and the answer comes
//! back byte for byte but for the cost the gateway adds to its `usage` (docs/api/cost.md:
//! the final event's, streamed). With `store` the Response is recorded as its user's
//! (`Keeper::keep_native`) before the answer or its final event leaves, so only that user
//! may continue it through the shared upstream key.

use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt, stream};
use http::{StatusCode, header};
use serde_json::Value;

use super::Keeper;
use crate::api::AppState;
use crate::api::error::ApiError;
use crate::catalog::Catalog;
use crate::protocol::openai::operation::Operation;
use crate::relay::stream::MeteredStream;
use crate::relay::{RelayCall, RelayReply};

/// Whether `model` has a channel (the pinned one, if any) that serves the Responses API
/// itself. Such a model is served natively, failing over among those channels only.
pub fn served_natively(catalog: &Catalog, model: &str, pinned: Option<&str>) -> bool {
    catalog
        .channels_for(model)
        .iter()
        .filter(|c| pinned.is_none_or(|name| name == c.name))
        .any(|c| c.serves(Operation::Responses))
}

/// A native response continued where no native channel serves the model: the upstream
/// holds its conversation, so no other channel can.
pub fn not_continuable() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        None,
        Some("previous_response_id"),
        "This response was served by OpenAI's Responses API and can only be continued \
         with a model served by such a channel.",
    )
}

pub async fn relay(
    state: &AppState,
    call: RelayCall,
    keeper: Option<Keeper>,
) -> Result<Response, ApiError> {
    Ok(match state.relay.relay(call).await? {
        RelayReply::Json { body, charge, .. } => {
            if let Some(keeper) = keeper
                && let Ok(response) = serde_json::from_slice::<Value>(&body)
            {
                keeper.keep_native(&response).await;
            }
            let mut answer = (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response();
            crate::api::openai::stamp_cost(&mut answer, charge);
            answer
        }
        RelayReply::Stream(upstream) => {
            crate::api::openai::event_stream(recorded(upstream, keeper))
        }
    })
}

/// The relayed events unchanged; the final Response is recorded before the event that
/// carries it is passed on.
fn recorded(
    upstream: Box<MeteredStream>,
    keeper: Option<Keeper>,
) -> impl Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send {
    stream::unfold(
        (upstream, keeper),
        |(mut upstream, mut keeper)| async move {
            let item = upstream.next().await?;
            if keeper.is_some()
                && let Some(response) = upstream
                    .native_final_event()
                    .and_then(|data| serde_json::from_slice::<Value>(data).ok())
                    .map(|mut event| event["response"].take())
                && let Some(keeper) = keeper.take()
            {
                keeper.keep_native(&response).await;
            }
            Some((item, (upstream, keeper)))
        },
    )
}
