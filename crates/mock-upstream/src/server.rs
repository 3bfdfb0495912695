//! Routing and the in-process server handle.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::{Json, Router, middleware as mw};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::error::error_response;
use crate::middleware::{MAX_BODY, auth, fail_for_keys, record};
use crate::state::{Defaults, MockState, RecordedRequest};
use crate::{chat, embeddings, gemini, legacy, messages, responses};

/// How long `shutdown()` waits for in-flight responses before giving up.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The mock's routes. API routes are served both under `/v1` and at the root
/// so a base URL works with or without the `/v1` suffix.
pub fn router(state: MockState) -> Router {
    let openai = Router::new()
        .route("/chat/completions", post(chat::completions))
        .route("/models", get(models))
        .route("/embeddings", post(embeddings::embeddings))
        .route("/completions", post(legacy::completions))
        .route("/responses", post(responses::create))
        .route_layer(mw::from_fn_with_state(state.clone(), auth));
    // Anthropic's dialect authenticates with `x-api-key` instead of a bearer token.
    let anthropic = Router::new()
        .route("/messages", post(messages::messages))
        .route_layer(mw::from_fn_with_state(state.clone(), messages::auth));
    let api = openai.merge(anthropic);
    // Gemini's dialect lives under `/v1beta` and authenticates with `x-goog-api-key`.
    let gemini = Router::new()
        .route("/v1beta/models/{target}", post(gemini::generate))
        .route_layer(mw::from_fn_with_state(state.clone(), gemini::auth));
    Router::new()
        .nest("/v1", api.clone())
        // DeepSeek's beta features (FIM completion, chat prefix completion) live under
        // `/beta` (https://api-docs.deepseek.com/zh-cn/quick_start/pricing, 2026-12-05).
        .nest("/beta", api.clone())
        .merge(api)
        .merge(gemini)
        .route("/mock/journal", get(journal))
        .route("/mock/reset", post(reset))
        .fallback(|| async {
            error_response(
                StatusCode::NOT_FOUND,
                "mock-upstream: unknown route",
                None,
                None,
            )
        })
        // Inside `record`: keyed failures are journaled like any other request.
        .layer(mw::from_fn_with_state(state.clone(), fail_for_keys))
        .layer(mw::from_fn_with_state(state.clone(), record))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

async fn models(State(state): State<MockState>) -> Json<Value> {
    let data: Vec<Value> = state
        .defaults()
        .models
        .iter()
        .map(
            |id| json!({"id": id, "object": "model", "created": 1_700_000_000, "owned_by": "mock"}),
        )
        .collect();
    Json(json!({"object": "list", "data": data}))
}

async fn journal(State(state): State<MockState>) -> Json<Vec<RecordedRequest>> {
    Json(state.journal())
}

async fn reset(State(state): State<MockState>) -> Json<Value> {
    state.reset();
    Json(json!({"ok": true}))
}

/// A running mock server. Dropping it (or calling [`MockServer::shutdown`])
/// stops accepting connections and releases hanging requests.
pub struct MockServer {
    pub addr: SocketAddr,
    pub state: MockState,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl MockServer {
    /// Starts on an ephemeral loopback port with default settings.
    pub async fn start() -> io::Result<Self> {
        Self::start_with(Defaults::default()).await
    }

    /// Starts on an ephemeral loopback port.
    pub async fn start_with(defaults: Defaults) -> io::Result<Self> {
        Self::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), defaults).await
    }

    /// Starts on `addr` (port 0 picks a free port; see [`MockServer::addr`]).
    pub async fn bind(addr: SocketAddr, defaults: Defaults) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        // Without NODELAY, Nagle plus delayed ACKs can hold small SSE events
        // back by tens of milliseconds and skew timing tests and benchmarks.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let state = MockState::new(defaults);
        let app = router(state.clone());
        let signal = state.clone();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { signal.shutdown_signal().await })
                .await
        });
        Ok(Self {
            addr,
            state,
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`, without `/v1` (both forms are served).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn journal(&self) -> Vec<RecordedRequest> {
        self.state.journal()
    }

    /// Stops the server, waiting briefly for in-flight responses to finish.
    pub async fn shutdown(mut self) -> io::Result<()> {
        self.state.trigger_shutdown();
        let Some(task) = self.task.take() else {
            return Ok(());
        };
        let abort = task.abort_handle();
        match tokio::time::timeout(SHUTDOWN_GRACE, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(io::Error::other(join)),
            Err(_elapsed) => {
                abort.abort();
                Ok(())
            }
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        // Graceful: the serve task drains on its own after the signal.
        self.state.trigger_shutdown();
    }
}
