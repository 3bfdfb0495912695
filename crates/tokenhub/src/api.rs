//! Inbound HTTP surfaces. Each surface turns HTTP into calls on the relay (or the store,
//! for management) and the results back into its own wire format. Only this layer
//! writes wire errors.

pub mod admin;
pub mod anthropic;
pub mod body_deadline;
pub mod client_ip;
pub mod error;
pub mod openai;
pub mod request_id;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::relay::Relay;
use crate::store::Store;

/// What every handler may reach.
#[derive(Clone)]
pub struct AppState {
    pub relay: Relay,
    pub store: Store,
    pub metrics: Option<PrometheusHandle>,
    pub management: std::sync::Arc<admin::Management>,
    /// Proxies whose `X-Forwarded-For` is believed (see `client_ip`).
    pub trusted_proxies: std::sync::Arc<Vec<ipnet::IpNet>>,
}

pub fn router(state: AppState, body: body_deadline::BodyPolicy) -> Router {
    let proxies = state.trusted_proxies.clone();
    Router::new()
        .merge(openai::routes())
        .merge(anthropic::routes())
        .merge(admin::routes())
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(body.max_bytes))
        .layer(axum::middleware::from_fn(move |request, next| {
            body_deadline::read_in_time(body, request, next)
        }))
        .layer(axum::middleware::from_fn(request_id::assign))
        .layer(axum::middleware::from_fn(move |request, next| {
            client_ip::resolve(proxies.clone(), request, next)
        }))
        .with_state(state)
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let body = state
        .metrics
        .as_ref()
        .map(PrometheusHandle::render)
        .unwrap_or_default();
    (
        [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        body,
    )
}
