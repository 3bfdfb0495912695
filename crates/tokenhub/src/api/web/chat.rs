//! `POST /chat/completions`: the chat demo's endpoint. It takes an OpenAI chat request
//! and relays it through the same pipeline as `/v1/chat/completions` (billing, limits,
//! routing, streaming), for a caller identified without an API key:
//! - a signed-in user (session cookie + `X-CSRF-Token`), billed to their balance;
//! - a visitor, when the operator allows the anonymous trial: free models only, a
//!   per-address rate limit, recorded under the `~anonymous` system user.
//!
//! These requests carry key id 0 in usage records: no API key was used.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;

use crate::accounts::Role;
use crate::api::AppState;
use crate::api::admin::auth::{Caller, SESSION_COOKIE, cookie};
use crate::api::admin::error::ManageError;
use crate::api::client_ip::ClientIp;
use crate::api::error::ApiError;
use crate::api::openai::into_response;
use crate::api::request_id::RequestId;
use crate::catalog::KeyEntry;
use crate::protocol::openai::operation::Operation;
use crate::relay::{Credential, RelayCall};

/// The name of the system user that owns anonymous chat usage. Sign-up names cannot
/// contain `~`, so no visitor can claim it.
pub const ANONYMOUS_USER: &str = "~anonymous";

/// Usage records of web chat requests carry this key id.
const NO_KEY: i64 = 0;

#[derive(Deserialize)]
struct ModelOnly {
    model: Option<String>,
}

pub async fn complete(
    State(state): State<AppState>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    ClientIp(client_ip): ClientIp,
    headers: HeaderMap,
    caller: Result<Caller, ManageError>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let received = Instant::now();
    let body = body.map_err(|r| ApiError::invalid_request(r.status(), r.body_text()))?;
    let admin = caller.as_ref().is_ok_and(|c| c.role >= Role::Admin);
    let key = if cookie(&headers, SESSION_COOKIE).is_some() {
        signed_in(&state, caller).await?
    } else {
        anonymous(&state, client_ip, &body).await?
    };
    let call = RelayCall {
        operation: Operation::Chat,
        pinned_channel: None,
        request_id,
        credential: Credential::Resolved(key),
        body,
        client_ip,
    };
    match state.relay.relay(call).await {
        Ok(reply) => Ok(into_response(reply, received)),
        // Admins trying the chat see what to fix; everyone else a plain sentence.
        Err(error) if admin => Err(error.into()),
        Err(error) => Err(ApiError::from(error).for_end_user()),
    }
}

async fn signed_in(
    state: &AppState,
    caller: Result<Caller, ManageError>,
) -> Result<Arc<KeyEntry>, ApiError> {
    let caller = caller.map_err(|e| {
        ApiError::new(
            e.status(),
            "invalid_request_error",
            Some("invalid_session"),
            None,
            e.message(),
        )
    })?;
    // The relay refuses the request if the user is gone or disabled; here only the limits.
    let user = state
        .relay
        .accounts
        .user(caller.user.id)
        .await
        .ok()
        .flatten();
    Ok(Arc::new(KeyEntry {
        id: NO_KEY,
        user_id: caller.user.id,
        name: "web chat".into(),
        enabled: true,
        allowed_models: None,
        quota: None,
        expires_at: None,
        allowed_ips: None,
        rpm_limit: user.as_ref().and_then(|u| u.rpm_limit),
        tpm_limit: user.and_then(|u| u.tpm_limit),
    }))
}

async fn anonymous(
    state: &AppState,
    client_ip: Option<std::net::IpAddr>,
    body: &Bytes,
) -> Result<Arc<KeyEntry>, ApiError> {
    let refuse = |message: &str| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            Some("sign_in_required"),
            None,
            message,
        )
    };
    let settings = state
        .management
        .site
        .current(&state.store)
        .await
        .map_err(|error| {
            tracing::warn!(%error, "cannot read the site settings");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable_error",
                None,
                None,
                "The chat demo is unavailable right now; try again shortly.",
            )
        })?;
    let Some(owner) = state
        .web
        .anonymous_user_id
        .filter(|_| settings.anonymous_chat)
    else {
        return Err(refuse(
            "Sign in to use the chat: this gateway has no anonymous trial.",
        ));
    };
    let model = requested_model(body)?;
    let free = state
        .relay
        .catalog
        .load()
        .model(&model)
        .is_some_and(|m| m.prices.is_free());
    if !free {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "invalid_request_error",
            Some("sign_in_required"),
            Some("model"),
            format!("Sign in to use `{model}`: visitors may try free models only."),
        ));
    }
    state
        .web
        .admit_anonymous(client_ip, settings.anonymous_chat_rpm)
        .await?;
    Ok(Arc::new(KeyEntry {
        id: NO_KEY,
        user_id: owner,
        name: "anonymous chat".into(),
        enabled: true,
        // Only the model checked above: no fallback to a paid one.
        allowed_models: Some(HashSet::from([model])),
        quota: None,
        expires_at: None,
        allowed_ips: None,
        rpm_limit: None,
        tpm_limit: None,
    }))
}

/// The `model` of a chat request, or the 400 the relay would give for a body without one.
fn requested_model(body: &[u8]) -> Result<String, ApiError> {
    let parsed = serde_json::from_slice::<ModelOnly>(body).map_err(|e| {
        ApiError::invalid_request(
            StatusCode::BAD_REQUEST,
            format!("We could not parse the JSON body of your request: {e}"),
        )
    })?;
    parsed.model.filter(|m| !m.is_empty()).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            None,
            Some("model"),
            "You must provide a model parameter.",
        )
    })
}
