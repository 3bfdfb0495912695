//! The OpenAI-compatible surface: `/v1/chat/completions`, `/v1/completions`,
//! `/v1/embeddings` (routed by `api::relayed`) and `/v1/models`.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, StatusCode, header};
use serde::Serialize;

use super::AppState;
use super::api_key::{ApiCaller, api_key};
pub use super::client_ip::ClientIp;
use super::error::ApiError;
use super::relayed::RelayedRequest;
use crate::catalog::Model;
use crate::protocol::openai::charge::Charge;
use crate::protocol::openai::operation::Operation;
use crate::relay::{Credential, RelayReply};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/models", get(list_models))
        .route("/v1/models/{*id}", get(get_model))
}

/// The `x-tokenhub-channel` header: an admin's choice of channel, for debugging.
pub fn pinned_channel(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("x-tokenhub-channel")?.to_str().ok()?.trim();
    (!value.is_empty()).then(|| value.to_string())
}

/// One handler for every relayed OpenAI operation; the route picks the operation.
pub(super) async fn relay(
    state: AppState,
    operation: Operation,
    RelayedRequest { origin, body }: RelayedRequest,
) -> Response {
    let answer = async {
        let received = origin.received;
        let credential = Credential::Bearer(api_key(&origin.headers, false));
        let call = origin.relay_call(operation, credential, body?);
        Ok::<_, ApiError>(into_response(state.relay.relay(call).await?, received))
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

/// An OpenAI-shaped answer: JSON with the gateway's overhead in a header, or SSE.
pub fn into_response(reply: RelayReply, received: std::time::Instant) -> Response {
    match reply {
        RelayReply::Json {
            body,
            upstream_time,
            charge,
        } => {
            let overhead = received.elapsed().saturating_sub(upstream_time);
            crate::meters::METERS
                .gateway_overhead
                .record(overhead.as_secs_f64());
            let mut response = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
            response.headers_mut().insert(
                "x-tokenhub-overhead-us",
                http::HeaderValue::from(overhead.as_micros() as u64),
            );
            stamp_cost(&mut response, charge);
            response
        }
        RelayReply::Stream(stream) => event_stream(stream),
    }
}

/// `x-tokenhub-cost-usd` on a non-stream answer: the same decimal as its `usage.cost`.
pub fn stamp_cost(response: &mut Response, charge: Option<Charge>) {
    let value = charge.and_then(|c| http::HeaderValue::from_str(c.header_value()).ok());
    if let Some(value) = value {
        response.headers_mut().insert(COST_HEADER, value);
    }
}

/// A streamed answer: Server-Sent Events, never cached or buffered by a proxy.
pub fn event_stream<S>(events: S) -> Response
where
    S: futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
{
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Body::from_stream(events),
    )
        .into_response()
}

pub const COST_HEADER: &str = "x-tokenhub-cost-usd";

#[derive(Serialize)]
struct ModelObject<'a> {
    id: &'a str,
    object: &'static str,
    created: i64,
    owned_by: &'a str,
}

impl<'a> From<&'a Model> for ModelObject<'a> {
    fn from(model: &'a Model) -> Self {
        ModelObject {
            id: &model.id,
            object: "model",
            created: model.created,
            owned_by: &model.provider,
        }
    }
}

#[derive(Serialize)]
struct ModelList<'a> {
    object: &'static str,
    data: Vec<ModelObject<'a>>,
}

/// Anthropic's model object (`GET /v1/models` with `anthropic-version`).
#[derive(Serialize)]
struct AnthropicModel<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    display_name: &'a str,
    created_at: String,
}

impl<'a> From<&'a Model> for AnthropicModel<'a> {
    fn from(model: &'a Model) -> Self {
        let created_at = time::OffsetDateTime::from_unix_timestamp(model.created)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default();
        AnthropicModel {
            kind: "model",
            id: &model.id,
            display_name: &model.id,
            created_at,
        }
    }
}

/// Anthropic SDKs list models with `anthropic-version` and their key in `x-api-key`.
fn anthropic_client(headers: &HeaderMap) -> bool {
    headers.contains_key("anthropic-version")
}

/// Models this key may call now: allowed for the key and served by a usable channel. In
/// Anthropic's shape (one page: `has_more` false) for Anthropic clients.
async fn list_models(
    ApiCaller { catalog, key, .. }: ApiCaller<true>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let models: Vec<_> = catalog
        .routable_models()
        .into_iter()
        .filter(|m| key.allows_model(&m.id))
        .collect();
    if anthropic_client(&headers) {
        let data: Vec<AnthropicModel> = models.iter().map(|m| (&***m).into()).collect();
        return Ok(axum::Json(serde_json::json!({
            "data": data,
            "has_more": false,
            "first_id": data.first().map(|m| m.id),
            "last_id": data.last().map(|m| m.id),
        }))
        .into_response());
    }
    let data = models.iter().map(|m| ModelObject::from(&***m)).collect();
    Ok(axum::Json(ModelList {
        object: "list",
        data,
    })
    .into_response())
}

async fn get_model(
    Path(id): Path<String>,
    ApiCaller { catalog, key, .. }: ApiCaller<true>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let model = catalog
        .model(&id)
        .filter(|m| key.allows_model(&m.id) && !catalog.channels_for(&m.id).is_empty());
    match model {
        Some(model) if anthropic_client(&headers) => {
            Ok(axum::Json(AnthropicModel::from(&**model)).into_response())
        }
        Some(model) => Ok(axum::Json(ModelObject::from(&**model)).into_response()),
        None => Err(crate::relay::RelayError::ModelNotFound(id).into()),
    }
}
