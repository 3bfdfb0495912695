//! The relayed routes (`POST /v1/chat/completions`, `/v1/completions`, `/v1/embeddings`,
//! `/v1/messages`, `/v1/responses`), served in front of the axum router.
//!
//! These routes carry nearly all the traffic. Through axum each request paid for the
//! router's match and its boxed services, the `inbound` middleware's futures, request
//! extensions (a map allocated per request), a copy of every header for the `HeaderMap`
//! extractor and bodies boxed on the way in and out (bench/RESULTS.md, addendum 12). The
//! fast path matches method and path by hand and does what `api::inbound` and the
//! extractors do, in the same order and with the same helpers: the client's address, the
//! request id, CORS, the body within its deadline and size limit, the handler (a panic
//! answered 500), then CORS and the request id on the answer.
//!
//! The router keeps these routes too, served by the same handlers through the
//! `RelayedRequest` extractor: another method gets its 405 and a preflight its answer
//! there, and the router stays whole on its own.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::response::Response;
use axum::routing::post;
use futures_util::future::BoxFuture;
use http::{HeaderMap, Method, StatusCode};
use hyper::body::Incoming;

use super::body_deadline::{self, BodyPolicy};
use super::client_ip::{self, ClientIp};
use super::request_id::{self, RequestId};
use super::{AppState, anthropic, openai, responses};
use crate::protocol::openai::operation::Operation;
use crate::relay::{Credential, RelayCall};

/// What a relayed route's handler takes: where the request came from, and the whole body
/// or why it could not be read (the handler decides when to say so: after
/// authentication, for some surfaces).
pub struct RelayedRequest {
    pub origin: RequestOrigin,
    pub body: Result<Bytes, BodyRejection>,
}

impl RelayedRequest {
    /// A request whose body has just been read (or refused): its overhead counts from now.
    fn received(
        request_id: String,
        client: ClientIp,
        headers: HeaderMap,
        body: Result<Bytes, BodyRejection>,
    ) -> RelayedRequest {
        RelayedRequest {
            origin: RequestOrigin {
                request_id,
                client,
                headers,
                received: Instant::now(),
            },
            body,
        }
    }
}

/// A relayed request but its body: what every surface builds its `RelayCall` from.
pub struct RequestOrigin {
    pub request_id: String,
    pub client: ClientIp,
    pub headers: HeaderMap,
    /// When the body had arrived: the client's upload speed is not gateway overhead.
    pub received: Instant,
}

impl RequestOrigin {
    /// The relay call for this request, with the body the surface sends (as received, or
    /// translated) and the credential it authenticated with.
    pub fn relay_call(
        self,
        operation: Operation,
        credential: Credential,
        body: Bytes,
    ) -> RelayCall {
        RelayCall {
            pinned_channel: openai::pinned_channel(&self.headers),
            operation,
            request_id: self.request_id,
            credential,
            body,
            client_ip: self.client.0,
        }
    }
}

/// A body that could not be read whole, with the status and text axum gives it.
#[derive(Debug)]
pub struct BodyRejection {
    pub status: StatusCode,
    pub message: String,
}

impl BodyRejection {
    /// A body declared larger than the limit, in the words of axum's `Bytes` extractor.
    fn too_large() -> BodyRejection {
        BodyRejection {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: "Failed to buffer the request body: length limit exceeded".into(),
        }
    }
}

impl From<axum::extract::rejection::BytesRejection> for BodyRejection {
    fn from(rejection: axum::extract::rejection::BytesRejection) -> Self {
        BodyRejection {
            status: rejection.status(),
            message: rejection.body_text(),
        }
    }
}

/// The router's way in: `api::inbound` has set the request id and client address.
impl FromRequest<AppState> for RelayedRequest {
    type Rejection = Infallible;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Infallible> {
        let (mut parts, body) = request.into_parts();
        let request_id = parts
            .extensions
            .remove::<RequestId>()
            .map(|id| id.0)
            .unwrap_or_default();
        let client = parts
            .extensions
            .get::<ClientIp>()
            .copied()
            .unwrap_or(ClientIp(None));
        let headers = std::mem::take(&mut parts.headers);
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(BodyRejection::from);
        Ok(RelayedRequest::received(request_id, client, headers, body))
    }
}

/// One of the relayed routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelayedRoute {
    Chat,
    Completions,
    Embeddings,
    Messages,
    Responses,
}

impl RelayedRoute {
    const ALL: [RelayedRoute; 5] = [
        RelayedRoute::Chat,
        RelayedRoute::Completions,
        RelayedRoute::Embeddings,
        RelayedRoute::Messages,
        RelayedRoute::Responses,
    ];

    fn path(self) -> &'static str {
        match self {
            RelayedRoute::Chat => "/v1/chat/completions",
            RelayedRoute::Completions => "/v1/completions",
            RelayedRoute::Embeddings => "/v1/embeddings",
            RelayedRoute::Messages => "/v1/messages",
            RelayedRoute::Responses => "/v1/responses",
        }
    }

    /// The route a request is for, when it is a relayed one (matched as axum matches:
    /// the exact path, whatever the query).
    pub fn of(method: &Method, path: &str) -> Option<RelayedRoute> {
        if method != Method::POST {
            return None;
        }
        RelayedRoute::ALL
            .into_iter()
            .find(|route| route.path() == path)
    }

    /// The handler's future, boxed where it is made: it is several KB, and every future
    /// that awaited it inline would copy it again each time it is moved (hyper moves the
    /// future a service returns; bench/RESULTS.md, addenda 12 and 16).
    fn answer(self, state: AppState, request: RelayedRequest) -> BoxFuture<'static, Response> {
        match self {
            RelayedRoute::Chat => Box::pin(openai::relay(state, Operation::Chat, request)),
            RelayedRoute::Completions => {
                Box::pin(openai::relay(state, Operation::Completions, request))
            }
            RelayedRoute::Embeddings => {
                Box::pin(openai::relay(state, Operation::Embeddings, request))
            }
            RelayedRoute::Messages => Box::pin(anthropic::messages(state, request)),
            RelayedRoute::Responses => Box::pin(responses::create(state, request)),
        }
    }
}

/// The relayed routes as the router serves them (for any other method, and preflights).
pub fn routes() -> Router<AppState> {
    RelayedRoute::ALL
        .into_iter()
        .fold(Router::new(), |router, route| {
            router.route(
                route.path(),
                post(
                    move |State(state): State<AppState>, request: RelayedRequest| {
                        route.answer(state, request)
                    },
                ),
            )
        })
}

/// The relayed routes without the router.
pub struct FastPath {
    pub state: AppState,
    pub body: BodyPolicy,
}

impl FastPath {
    /// Serves one request for `route` from the TCP peer `peer`, as `api::inbound` and
    /// the router would. Its future is small (the handler's is boxed apart), so hyper's
    /// moves of it copy little.
    pub async fn serve(
        self: Arc<Self>,
        route: RelayedRoute,
        request: http::Request<Incoming>,
        peer: SocketAddr,
    ) -> Response {
        let (parts, body) = request.into_parts();
        let client = client_ip::of(&self.state.trusted_proxies, Some(peer.ip()), &parts.headers);
        let (request_id, id_header) = request_id::new();
        // A POST is never a preflight: those are OPTIONS, which the router answers.
        let allowed_origin = self
            .state
            .cors
            .allow_origin(parts.uri.path(), &parts.headers);
        let body = if body_deadline::declared_too_large(self.body, &parts.headers) {
            Err(BodyRejection::too_large())
        } else {
            match body_deadline::collect(body, self.body).await {
                Ok(bytes) => Ok(bytes),
                Err(refusal) => {
                    let refused = body_deadline::refuse(parts.uri.path(), refusal, self.body);
                    return super::finish(&self.state.cors, refused, allowed_origin, id_header);
                }
            }
        };
        let request = RelayedRequest::received(request_id, client, parts.headers, body);
        let answer =
            super::answer_even_if_it_panics(route.answer(self.state.clone(), request)).await;
        super::finish(&self.state.cors, answer, allowed_origin, id_header)
    }
}

impl From<BodyRejection> for super::error::ApiError {
    fn from(rejection: BodyRejection) -> Self {
        super::error::ApiError::invalid_request(rejection.status, rejection.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_posts_to_the_relayed_paths_take_the_fast_path() {
        assert_eq!(
            RelayedRoute::of(&Method::POST, "/v1/chat/completions"),
            Some(RelayedRoute::Chat)
        );
        assert_eq!(
            RelayedRoute::of(&Method::POST, "/v1/responses"),
            Some(RelayedRoute::Responses)
        );
        assert_eq!(RelayedRoute::of(&Method::GET, "/v1/chat/completions"), None);
        assert_eq!(RelayedRoute::of(&Method::OPTIONS, "/v1/messages"), None);
        for path in [
            "/v1/messages/count_tokens",
            "/v1/responses/input_tokens",
            "/v1/chat/completions/",
            "/chat/completions",
            "/v1/models",
        ] {
            assert_eq!(RelayedRoute::of(&Method::POST, path), None, "{path}");
        }
    }
}

#[cfg(test)]
mod future_size_tests {
    use super::*;

    fn future_size<A, B, C, D, F>(_: impl FnOnce(A, B, C, D) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// What hyper holds and moves per request stays small: the handlers' futures (each
    /// several KB) live in their own boxes.
    #[test]
    fn the_fast_paths_future_is_small() {
        let serve = future_size(FastPath::serve);
        eprintln!("FastPath::serve's future: {serve} bytes");
        assert!(serve < 2048, "FastPath::serve's future is {serve} bytes");
    }
}
