//! Probes for load balancers and orchestrators: `/healthz` says the process serves HTTP
//! (nothing else is touched: a liveness probe must not fail because a dependency did),
//! `/readyz` whether this instance can take traffic now (`cluster::Readiness`), with the
//! detail of every check, and 503 with the reasons when it cannot.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;

use super::AppState;

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    let (ready, detail) = state.readiness.report().await;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(detail)).into_response()
}
