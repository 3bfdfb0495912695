//! User administration: `/api/admin/users…` (admin or root; root accounts only by root).

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{Body, ErrorBody, ManageError, Path, Query, Result};
use super::keys::{KeyList, list_of};
use super::wire::{PageParams, UserView, nullable, parse_usd};
use crate::accounts::user_admin::{self, UserPatch};
use crate::accounts::{Role, audit};
use crate::api::AppState;
use crate::ledger::money::Nanos;
use crate::store::{UserDetail, UserQuery};

pub async fn live_detail(state: &AppState, id: i64) -> Result<UserDetail> {
    Ok(user_admin::live_user(&state.store, id).await?)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserFilter {
    /// Substring of the name, case-insensitive.
    pub search: Option<String>,
    pub role: Option<String>,
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct UserPage {
    pub data: Vec<UserView>,
    pub total: i64,
}

#[derive(Deserialize, ToSchema)]
pub struct NewUser {
    pub username: String,
    /// Without one, the user cannot log in (keys still work).
    pub password: Option<String>,
    /// user (default), admin or root (root only by root).
    pub role: Option<String>,
    /// Opening balance, decimal USD (ledger kind `initial`).
    pub balance_usd: Option<String>,
}

/// Omitted members stay; `null` clears a limit.
#[derive(Deserialize, ToSchema)]
pub struct UserPatchBody {
    pub role: Option<String>,
    /// active or disabled.
    pub status: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>)]
    pub rpm_limit: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>)]
    pub tpm_limit: Option<Option<i64>>,
}

#[derive(Deserialize, ToSchema)]
pub struct BalanceAdjustment {
    /// Decimal USD; negative debits.
    pub amount_usd: String,
    pub reason: String,
}

fn role(text: &str) -> Result<Role> {
    Role::parse(text).ok_or_else(|| ManageError::invalid("role is user, admin or root"))
}

/// List and search users.
#[utoipa::path(get, path = "/api/admin/users", tag = "admin", params(UserFilter),
    responses((status = 200, body = UserPage), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(filter): Query<UserFilter>,
) -> Result<Json<UserPage>> {
    caller.require(Role::Admin)?;
    let (limit, offset) = PageParams {
        limit: filter.limit,
        offset: filter.offset,
    }
    .bounded();
    let query = UserQuery {
        search: filter.search.filter(|s| !s.is_empty()),
        role: filter.role,
        status: filter.status,
        limit,
        offset,
    };
    let (users, total) = state.store.search_users(&query).await?;
    Ok(Json(UserPage {
        data: users.iter().map(UserView::from_detail).collect(),
        total,
    }))
}

/// Create a user.
#[utoipa::path(post, path = "/api/admin/users", tag = "admin", request_body = NewUser,
    responses((status = 201, body = UserView), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<NewUser>,
) -> Result<(StatusCode, Json<UserView>)> {
    caller.require(Role::Admin)?;
    let role = role(body.role.as_deref().unwrap_or("user"))?;
    let balance = match &body.balance_usd {
        Some(text) => parse_usd("balance_usd", text)?,
        None => Nanos::ZERO,
    };
    let actor = caller.actor();
    let user = user_admin::create(
        &state.store,
        &actor,
        body.username.trim(),
        body.password.as_deref(),
        role,
        balance,
    )
    .await?;
    let view = UserView::from_detail(&live_detail(&state, user.id).await?);
    audit::record(
        &state.store,
        &actor,
        "user.create",
        &format!("user:{}", user.id),
        None::<&()>,
        Some(&view),
    )
    .await;
    Ok((StatusCode::CREATED, Json(view)))
}

/// One user.
#[utoipa::path(get, path = "/api/admin/users/{id}", tag = "admin", params(("id" = i64, Path)),
    responses((status = 200, body = UserView), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<UserView>> {
    caller.require(Role::Admin)?;
    Ok(Json(UserView::from_detail(&live_detail(&state, id).await?)))
}

/// Change a user's role, status (active/disabled) or default RPM/TPM limits.
#[utoipa::path(patch, path = "/api/admin/users/{id}", tag = "admin", params(("id" = i64, Path)),
    request_body = UserPatchBody,
    responses((status = 200, body = UserView), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Body(body): Body<UserPatchBody>,
) -> Result<Json<UserView>> {
    caller.require(Role::Admin)?;
    let before = UserView::from_detail(&live_detail(&state, id).await?);
    let patch = UserPatch {
        role: body.role.as_deref().map(role).transpose()?,
        status: body.status,
        rpm: body.rpm_limit,
        tpm: body.tpm_limit,
    };
    let actor = caller.actor();
    let after = UserView::from_detail(&user_admin::update(&state.store, &actor, id, patch).await?);
    audit::record(
        &state.store,
        &actor,
        "user.update",
        &format!("user:{id}"),
        Some(&before),
        Some(&after),
    )
    .await;
    Ok(Json(after))
}

/// Delete a user: keys revoked, sessions ended; usage history and ledger kept.
#[utoipa::path(delete, path = "/api/admin/users/{id}", tag = "admin", params(("id" = i64, Path)),
    responses((status = 204), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode> {
    caller.require(Role::Admin)?;
    let actor = caller.actor();
    let before = UserView::from_detail(&user_admin::delete(&state.store, &actor, id).await?);
    audit::record(
        &state.store,
        &actor,
        "user.delete",
        &format!("user:{id}"),
        Some(&before),
        None::<&()>,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Credit (or, negative, debit) a user's balance with a reason, in the ledger.
#[utoipa::path(post, path = "/api/admin/users/{id}/balance", tag = "admin", params(("id" = i64, Path)),
    request_body = BalanceAdjustment,
    responses((status = 200, body = UserView), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn adjust_balance(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Body(body): Body<BalanceAdjustment>,
) -> Result<Json<UserView>> {
    caller.require(Role::Admin)?;
    let amount = parse_usd("amount_usd", &body.amount_usd)?;
    let before = UserView::from_detail(&live_detail(&state, id).await?);
    let after = UserView::from_detail(
        &user_admin::adjust_balance(&state.store, id, amount, &body.reason).await?,
    );
    let change = serde_json::json!({"amount_usd": amount.to_usd_string(), "reason": body.reason, "user": after});
    audit::record(
        &state.store,
        &caller.actor(),
        "user.balance",
        &format!("user:{id}"),
        Some(&before),
        Some(&change),
    )
    .await;
    Ok(Json(after))
}

#[derive(Deserialize, ToSchema)]
pub struct PasswordReset {
    /// The new password (at least 8 characters).
    pub password: String,
}

/// Set a user's password (a reset: no current password asked). Every session of the
/// user ends. The audit log records the reset, never the password.
#[utoipa::path(post, path = "/api/admin/users/{id}/password", tag = "admin", params(("id" = i64, Path)),
    request_body = PasswordReset,
    responses((status = 204), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn reset_password(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Body(body): Body<PasswordReset>,
) -> Result<StatusCode> {
    caller.require(Role::Admin)?;
    let actor = caller.actor();
    let user = UserView::from_detail(
        &user_admin::reset_password(&state.store, &actor, id, &body.password).await?,
    );
    audit::record(
        &state.store,
        &actor,
        "user.password_reset",
        &format!("user:{id}"),
        Some(&user),
        None::<&UserView>,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// A user's keys (prefixes only).
#[utoipa::path(get, path = "/api/admin/users/{id}/keys", tag = "admin", params(("id" = i64, Path)),
    responses((status = 200, body = KeyList), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn keys(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<KeyList>> {
    caller.require(Role::Admin)?;
    live_detail(&state, id).await?;
    Ok(Json(KeyList {
        data: list_of(&state.store, id).await?,
    }))
}
