//! Redemption codes: `/api/admin/redemptions` (admin). Codes are shown once, at creation.

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{Body, ErrorBody, Path, Query, Result};
use super::wire::{PageParams, parse_usd, usd};
use crate::accounts::{Role, audit, redemption};
use crate::api::AppState;
use crate::store::RedemptionRow;

#[derive(Deserialize, ToSchema)]
pub struct NewCodesBody {
    /// 1 to 1000.
    pub count: usize,
    /// Value of each code, decimal USD.
    pub amount_usd: String,
    /// Unix ms; absent = never expires.
    pub expires_at: Option<i64>,
    /// A label for the batch.
    #[serde(default)]
    pub batch: String,
}

#[derive(Serialize, ToSchema)]
pub struct CodeView {
    pub id: i64,
    /// e.g. `THC-AbCd…`.
    pub prefix: String,
    pub amount_usd: String,
    pub batch: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub used_by: Option<i64>,
    pub used_at: Option<i64>,
}

impl From<&RedemptionRow> for CodeView {
    fn from(row: &RedemptionRow) -> Self {
        CodeView {
            id: row.id,
            prefix: row.code_prefix.clone(),
            amount_usd: usd(row.amount),
            batch: row.batch.clone(),
            created_at: row.created_at,
            expires_at: row.expires_at,
            used_by: row.used_by,
            used_at: row.used_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CreatedCode {
    #[serde(flatten)]
    pub view: CodeView,
    /// The full code; shown only in this response.
    pub code: String,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedCodes {
    pub codes: Vec<CreatedCode>,
}

#[derive(Serialize, ToSchema)]
pub struct CodeList {
    pub data: Vec<CodeView>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CodeFilter {
    /// true: redeemed codes only; false: unused only.
    pub used: Option<bool>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Create N codes of $X each.
#[utoipa::path(post, path = "/api/admin/redemptions", tag = "admin", request_body = NewCodesBody,
    responses((status = 201, body = CreatedCodes), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<NewCodesBody>,
) -> Result<(StatusCode, Json<CreatedCodes>)> {
    caller.require(Role::Admin)?;
    let amount = parse_usd("amount_usd", &body.amount_usd)?;
    let actor = caller.actor();
    let created = redemption::create(
        &state.store,
        &actor,
        body.count,
        amount,
        &body.batch,
        body.expires_at,
    )
    .await?;
    let views: Vec<CodeView> = created.iter().map(|(row, _)| CodeView::from(row)).collect();
    audit::record(
        &state.store,
        &actor,
        "redemption.create",
        &format!("batch:{}", body.batch),
        None::<&()>,
        Some(&views),
    )
    .await;
    let codes = created
        .into_iter()
        .map(|(row, code)| CreatedCode {
            view: CodeView::from(&row),
            code,
        })
        .collect();
    Ok((StatusCode::CREATED, Json(CreatedCodes { codes })))
}

/// List codes, newest first (prefixes only).
#[utoipa::path(get, path = "/api/admin/redemptions", tag = "admin", params(CodeFilter),
    responses((status = 200, body = CodeList), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(filter): Query<CodeFilter>,
) -> Result<Json<CodeList>> {
    caller.require(Role::Admin)?;
    let (limit, offset) = PageParams {
        limit: filter.limit,
        offset: filter.offset,
    }
    .bounded();
    let rows = state
        .store
        .redemption_codes(filter.used, limit, offset)
        .await?;
    Ok(Json(CodeList {
        data: rows.iter().map(CodeView::from).collect(),
    }))
}

/// Delete an unused code.
#[utoipa::path(delete, path = "/api/admin/redemptions/{id}", tag = "admin", params(("id" = i64, Path)),
    responses((status = 204), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode> {
    caller.require(Role::Admin)?;
    state.store.delete_unused_code(id).await?;
    audit::record(
        &state.store,
        &caller.actor(),
        "redemption.delete",
        &format!("code:{id}"),
        None::<&()>,
        None::<&()>,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
