//! Admin access tokens (`th-admin-…`): `/api/admin/tokens` (root only).

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{Body, ErrorBody, Path, Result};
use crate::accounts::{Role, admin_token, audit};
use crate::api::AppState;
use crate::store::AdminTokenRow;

#[derive(Deserialize, ToSchema)]
pub struct NewToken {
    /// The admin or root account the token acts as; default: the caller.
    pub user_id: Option<i64>,
    #[serde(default)]
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct TokenView {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub prefix: String,
    /// active or revoked.
    pub status: String,
    pub created_at: i64,
}

impl From<&AdminTokenRow> for TokenView {
    fn from(row: &AdminTokenRow) -> Self {
        TokenView {
            id: row.id,
            user_id: row.user_id,
            name: row.name.clone(),
            prefix: row.token_prefix.clone(),
            status: row.status.clone(),
            created_at: row.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    pub token: TokenView,
    /// The full token; shown only in this response.
    pub secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct TokenList {
    pub data: Vec<TokenView>,
}

/// Create an admin access token.
#[utoipa::path(post, path = "/api/admin/tokens", tag = "root", request_body = NewToken,
    responses((status = 201, body = CreatedToken), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<NewToken>,
) -> Result<(StatusCode, Json<CreatedToken>)> {
    caller.require(Role::Root)?;
    let owner_id = body.user_id.unwrap_or(caller.user.id);
    let owner = super::users::live_detail(&state, owner_id).await?.user;
    let actor = caller.actor();
    let (row, secret) = admin_token::issue(&state.store, &actor, &owner, &body.name).await?;
    let view = TokenView::from(&row);
    audit::record(
        &state.store,
        &actor,
        "admin_token.create",
        &format!("admin_token:{}", row.id),
        None::<&()>,
        Some(&view),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token: view,
            secret,
        }),
    ))
}

/// List admin access tokens.
#[utoipa::path(get, path = "/api/admin/tokens", tag = "root",
    responses((status = 200, body = TokenList), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<TokenList>> {
    caller.require(Role::Root)?;
    let rows = state.store.admin_tokens().await?;
    Ok(Json(TokenList {
        data: rows.iter().map(TokenView::from).collect(),
    }))
}

/// Revoke an admin access token.
#[utoipa::path(delete, path = "/api/admin/tokens/{id}", tag = "root", params(("id" = i64, Path)),
    responses((status = 204), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode> {
    caller.require(Role::Root)?;
    state.store.revoke_admin_token(id).await?;
    audit::record(
        &state.store,
        &caller.actor(),
        "admin_token.revoke",
        &format!("admin_token:{id}"),
        None::<&()>,
        None::<&()>,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
