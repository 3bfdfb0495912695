//! Inbound HTTP surfaces. Each surface turns HTTP into calls on the relay (or the store,
//! for management) and the results back into its own wire format. Only this layer
//! writes wire errors.

pub mod admin;
pub mod anthropic;
pub mod api_key;
pub mod body_deadline;
pub mod client_ip;
pub mod cors;
pub mod error;
pub mod metrics;
pub mod openai;
pub mod probes;
pub mod reencode;
pub mod relayed;
pub mod request_id;
pub mod responses;
pub mod web;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::relay::Relay;
use crate::store::Store;

/// What every handler may reach. One `Arc`: axum clones the state for every extractor
/// of every request, and cloning a dozen `Arc` fields each time showed in profiles.
#[derive(Clone)]
pub struct AppState(std::sync::Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(std::sync::Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub relay: Relay,
    pub store: Store,
    pub metrics: Option<PrometheusHandle>,
    /// When set, `/metrics` answers only this bearer token.
    pub metrics_token: Option<metrics::MetricsToken>,
    pub management: std::sync::Arc<admin::Management>,
    /// Proxies whose `X-Forwarded-For` is believed (see `client_ip`).
    pub trusted_proxies: std::sync::Arc<Vec<ipnet::IpNet>>,
    pub web: std::sync::Arc<web::Web>,
    /// Wakes the catalogue reloader (see `catalog::reload`).
    pub catalog_nudge: std::sync::Arc<tokio::sync::Notify>,
    /// Origins allowed to call `/v1/` from a browser.
    pub cors: std::sync::Arc<cors::CorsPolicy>,
    /// With Redis: a management write also wakes the other instances' reloaders.
    pub shared_state: Option<std::sync::Arc<crate::shared::SharedState>>,
    /// What `/readyz` checks.
    pub readiness: std::sync::Arc<crate::cluster::Readiness>,
    /// How long `/v1/responses` keeps stored responses.
    pub responses_retention: responses::Retention,
}

/// Everything the gateway serves: the relayed routes' fast path (`relayed`) in front of
/// the router, which serves the rest.
#[derive(Clone)]
pub struct App {
    router: Router,
    relayed: std::sync::Arc<relayed::FastPath>,
}

impl App {
    pub fn new(state: AppState, body: body_deadline::BodyPolicy) -> App {
        App {
            router: router(state.clone(), body),
            relayed: std::sync::Arc::new(relayed::FastPath { state, body }),
        }
    }

    /// Answers one request that arrived over TCP from `peer`.
    pub fn serve(
        &self,
        mut request: http::Request<hyper::body::Incoming>,
        peer: std::net::SocketAddr,
    ) -> impl std::future::Future<Output = axum::response::Response> + Send + use<> {
        use futures_util::future::Either;
        use tower::ServiceExt;
        match relayed::RelayedRoute::of(request.method(), request.uri().path()) {
            Some(route) => {
                // Boxed: hyper moves the future a service returns a few times, and each
                // move is a copy (bench/RESULTS.md, addendum 12); the handler's own,
                // larger future is boxed apart (`RelayedRoute::answer`).
                Either::Left(Box::pin(self.relayed.clone().serve(route, request, peer)))
            }
            None => {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                let answer = self.router.clone().oneshot(request);
                Either::Right(async move {
                    match answer.await {
                        Ok(response) => response,
                        Err(never) => match never {},
                    }
                })
            }
        }
    }
}

fn router(state: AppState, body: body_deadline::BodyPolicy) -> Router {
    let proxies = state.trusted_proxies.clone();
    let cors = state.cors.clone();
    Router::new()
        .merge(relayed::routes())
        .merge(openai::routes())
        .merge(anthropic::routes())
        .merge(responses::routes())
        .merge(
            admin::routes()
                .route_layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    reload_after_writes,
                ))
                .layer(web::compression()),
        )
        .merge(web::routes())
        .route("/healthz", get(probes::healthz))
        .route("/readyz", get(probes::readyz))
        .route("/metrics", get(metrics::render))
        .fallback(web::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(body.max_bytes))
        .layer(axum::middleware::from_fn(move |request, next| {
            inbound(proxies.clone(), cors.clone(), body, request, next)
        }))
        .with_state(state)
}

/// What every request goes through before its route, in one layer (each axum layer
/// wraps every route in futures of its own): the client's address, the request id
/// (also on a refusal below), CORS for `/v1/`, and the body read within its deadline.
async fn inbound(
    proxies: std::sync::Arc<Vec<ipnet::IpNet>>,
    cors: std::sync::Arc<cors::CorsPolicy>,
    body: body_deadline::BodyPolicy,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    client_ip::resolve(&proxies, &mut request);
    let id = request_id::assign(&mut request);
    let allowed_origin = cors.allow_origin(request.uri().path(), request.headers());
    if let Some(origin) = &allowed_origin
        && let Some(mut preflight) = cors.preflight(&request, origin.clone())
    {
        request_id::stamp(&mut preflight, id);
        return preflight;
    }
    let response = answer_even_if_it_panics(body_deadline::read_in_time(body, request, next)).await;
    finish(&cors, response, allowed_origin, id)
}

/// What every answer gets last: CORS headers for an allowed origin, and the request id.
fn finish(
    cors: &cors::CorsPolicy,
    mut response: axum::response::Response,
    allowed_origin: Option<http::HeaderValue>,
    id: Option<http::HeaderValue>,
) -> axum::response::Response {
    if let Some(origin) = allowed_origin {
        cors.stamp(origin, &mut response);
    }
    request_id::stamp(&mut response, id);
    response
}

/// A panic in a handler becomes a 500 for this request alone: the connection and the
/// process go on, and the request's settlement runs (from `Drop`) while it unwinds.
async fn answer_even_if_it_panics(
    handler: impl std::future::Future<Output = axum::response::Response>,
) -> axum::response::Response {
    use futures_util::FutureExt;
    match std::panic::AssertUnwindSafe(handler).catch_unwind().await {
        Ok(response) => response,
        Err(_) => {
            ::metrics::counter!("tokenhub_handler_panics_total").increment(1);
            tracing::error!("a request handler panicked; answered 500");
            error::ApiError::new(
                http::StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                Some("internal_error"),
                None,
                "The gateway failed while serving this request.",
            )
            .into_response()
        }
    }
}

/// After a management write succeeds, reload the catalogue now rather than at the next
/// poll, so what was just created (a key, a model) works on the very next request.
async fn reload_after_writes(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let writes = !matches!(*request.method(), http::Method::GET | http::Method::HEAD);
    let response = next.run(request).await;
    if writes && response.status().is_success() {
        state.catalog_nudge.notify_one();
        if let Some(shared) = &state.shared_state
            && let Err(error) = shared.publish_change().await
        {
            tracing::warn!(%error, "cannot notify other instances; they will poll");
        }
    }
    response
}

#[cfg(test)]
mod panic_tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_answers_500_in_the_openai_shape() {
        let response = answer_even_if_it_panics(async {
            if std::hint::black_box(true) {
                panic!("a bug in a handler");
            }
            "unreachable".into_response()
        })
        .await;
        assert_eq!(response.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(error["error"]["code"], "internal_error");
    }
}
