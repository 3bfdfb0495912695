//! The audit log: `/api/admin/audit` (root only).

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ErrorBody, Query, Result};
use crate::accounts::Role;
use crate::api::AppState;

#[derive(Serialize, ToSchema)]
pub struct AuditView {
    pub id: i64,
    pub actor_id: Option<i64>,
    pub actor_name: String,
    /// e.g. `user.update`, `channel.create`.
    pub action: String,
    /// e.g. `user:7`, `channel:3`, `model:gpt-4o`.
    pub target: String,
    /// The target as it was: any JSON value (an object for most actions; a masked
    /// token for `admin_token.create`).
    pub before: Option<serde_json::Value>,
    /// The target as it is now, like `before`.
    pub after: Option<serde_json::Value>,
    pub created_at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub data: Vec<AuditView>,
    /// Pass as `before_id` for the next (older) page; `null` at the end.
    pub next_before_id: Option<i64>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Entries older than this id.
    pub before_id: Option<i64>,
    /// 1-500, default 100.
    pub limit: Option<i64>,
}

/// Admin actions, newest first.
#[utoipa::path(get, path = "/api/admin/audit", tag = "root", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<AuditQuery>,
) -> Result<Json<AuditPage>> {
    caller.require(Role::Root)?;
    let limit = query.limit.unwrap_or(100).clamp(1, 500);
    let entries = state.store.audit_entries(query.before_id, limit).await?;
    let parse = |text: Option<String>| text.and_then(|t| serde_json::from_str(&t).ok());
    let next_before_id = (entries.len() as i64 == limit)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    let data = entries
        .into_iter()
        .map(|e| AuditView {
            id: e.id,
            actor_id: e.actor_id,
            actor_name: e.actor_name,
            action: e.action,
            target: e.target,
            before: parse(e.before),
            after: parse(e.after),
            created_at: e.created_at,
        })
        .collect();
    Ok(Json(AuditPage {
        data,
        next_before_id,
    }))
}
