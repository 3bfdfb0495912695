//! Balance history (credits and debits outside of requests): `/api/me/ledger` for the
//! caller, `/api/admin/users/{id}/ledger` for admins. Request costs are usage records.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ErrorBody, Path, Query, Result};
use super::wire::usd;
use crate::accounts::Role;
use crate::api::AppState;
use crate::store::LedgerEntry;

#[derive(Serialize, ToSchema)]
pub struct LedgerView {
    pub id: i64,
    /// Decimal USD; negative for a debit.
    pub amount_usd: String,
    /// initial, trial, admin or redemption.
    pub kind: String,
    pub reason: String,
    pub created_at: i64,
}

impl From<&LedgerEntry> for LedgerView {
    fn from(entry: &LedgerEntry) -> Self {
        LedgerView {
            id: entry.id,
            amount_usd: usd(entry.amount),
            kind: entry.kind.clone(),
            reason: entry.reason.clone(),
            created_at: entry.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct LedgerPage {
    pub data: Vec<LedgerView>,
    /// Pass as `before_id` for the next (older) page; `null` at the end.
    pub next_before_id: Option<i64>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LedgerQuery {
    /// Entries older than this id.
    pub before_id: Option<i64>,
    /// 1-500, default 100.
    pub limit: Option<i64>,
}

async fn page(state: &AppState, user_id: i64, query: &LedgerQuery) -> Result<Json<LedgerPage>> {
    let limit = query.limit.unwrap_or(100).clamp(1, 500);
    let entries = state
        .store
        .ledger_entries(user_id, query.before_id, limit)
        .await?;
    let full = i64::try_from(entries.len()).is_ok_and(|n| n == limit);
    Ok(Json(LedgerPage {
        next_before_id: entries.last().filter(|_| full).map(|e| e.id),
        data: entries.iter().map(LedgerView::from).collect(),
    }))
}

/// The caller's credits and debits (trial, redemptions, admin adjustments).
#[utoipa::path(get, path = "/api/me/ledger", tag = "me", params(LedgerQuery),
    responses((status = 200, body = LedgerPage), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn mine(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<LedgerQuery>,
) -> Result<Json<LedgerPage>> {
    page(&state, caller.user.id, &query).await
}

/// A user's credits and debits (admin).
#[utoipa::path(get, path = "/api/admin/users/{id}/ledger", tag = "admin",
    params(("id" = i64, Path), LedgerQuery),
    responses((status = 200, body = LedgerPage), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn of_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Query(query): Query<LedgerQuery>,
) -> Result<Json<LedgerPage>> {
    caller.require(Role::Admin)?;
    super::users::live_detail(&state, id).await?;
    page(&state, id, &query).await
}
