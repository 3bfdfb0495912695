//! The model catalogue: `/api/admin/models…` (admin), with bulk export/import as JSON or
//! CSV. Prices are decimal USD per 1M tokens. A model created without prices (by an
//! import from an upstream) is `priced: false` and refused until someone prices it.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::csv;
use super::error::{Body, Code, ErrorBody, ManageError, Path, Query, Result};
use super::wire::{parse_usd, usd};
use crate::accounts::catalog_admin::{self as ops, StoredModel};
use crate::accounts::{Role, audit};
use crate::api::AppState;
use crate::ledger::money::Nanos;
use crate::ledger::price_tiers::{PriceRules, PriceTier, PriceTierSpec};
use crate::providers::catalogue::CatalogueEntry;
use crate::store::{ModelRow, UnreadableModel};

const CSV_HEADER: [&str; 11] = [
    "id",
    "provider",
    "context",
    "input_usd_per_mtok",
    "output_usd_per_mtok",
    "cached_input_usd_per_mtok",
    "cache_write_usd_per_mtok",
    "enabled",
    "cache_write_1h_usd_per_mtok",
    "explicit_cached_input_usd_per_mtok",
    "price_tiers",
];
/// Largest bulk import, in models.
const MAX_IMPORT: usize = 10_000;

#[derive(Serialize, Deserialize, ToSchema, Clone)]
pub struct ModelView {
    pub id: String,
    pub provider: String,
    /// Context window in tokens (0 = unknown).
    #[serde(default)]
    pub context: i64,
    pub input_usd_per_mtok: String,
    pub output_usd_per_mtok: String,
    /// Price of cache reads; `null` = the input price.
    #[serde(default)]
    #[schema(example = "0.30")]
    pub cached_input_usd_per_mtok: Option<String>,
    /// Price of prompt tokens written to the provider's cache (Anthropic bills 5-minute
    /// writes at 1.25× input); `null` = the input price.
    #[serde(default)]
    #[schema(example = "3.75")]
    pub cache_write_usd_per_mtok: Option<String>,
    /// Price of prompt tokens written to a 1-hour cache; `null` = 2× the input price for a
    /// model an Anthropic channel serves (Anthropic's rule), else the cache-write price.
    #[serde(default)]
    #[schema(example = "6")]
    pub cache_write_1h_usd_per_mtok: Option<String>,
    /// Price of hits of an explicit cache, where the provider bills them apart from
    /// automatic ones (DashScope: 10 % of input); `null` = the cache-read price.
    #[serde(default)]
    #[schema(example = "0.04")]
    pub explicit_cached_input_usd_per_mtok: Option<String>,
    /// Alternative prices: by the `service_tier` the upstream reports, or by the UTC window
    /// the request started in. Windows may not overlap.
    #[serde(default)]
    #[schema(value_type = Vec<PriceTierSpec>)]
    pub price_tiers: Vec<PriceTier>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// false while the model waits for a price (it is not served until then).
    #[serde(default = "yes")]
    pub priced: bool,
}

fn yes() -> bool {
    true
}

impl ModelView {
    fn new(row: &ModelRow, priced: bool) -> ModelView {
        ModelView {
            id: row.id.clone(),
            provider: row.provider.clone(),
            context: row.context,
            input_usd_per_mtok: usd(row.input_price),
            output_usd_per_mtok: usd(row.output_price),
            cached_input_usd_per_mtok: row.cached_input_price.map(usd),
            cache_write_usd_per_mtok: row.cache_write_price.map(usd),
            cache_write_1h_usd_per_mtok: row.rules.cache_write_1h.map(usd),
            explicit_cached_input_usd_per_mtok: row.rules.explicit_cached_input.map(usd),
            price_tiers: row.rules.tiers.clone(),
            enabled: row.enabled,
            priced,
        }
    }

    fn to_row(&self) -> Result<ModelRow> {
        Ok(ModelRow {
            id: self.id.trim().to_string(),
            provider: self.provider.clone(),
            context: self.context,
            input_price: parse_usd("input_usd_per_mtok", &self.input_usd_per_mtok)?,
            output_price: parse_usd("output_usd_per_mtok", &self.output_usd_per_mtok)?,
            cached_input_price: optional_usd(
                "cached_input_usd_per_mtok",
                &self.cached_input_usd_per_mtok,
            )?,
            cache_write_price: optional_usd(
                "cache_write_usd_per_mtok",
                &self.cache_write_usd_per_mtok,
            )?,
            rules: PriceRules {
                cache_write_1h: optional_usd(
                    "cache_write_1h_usd_per_mtok",
                    &self.cache_write_1h_usd_per_mtok,
                )?,
                explicit_cached_input: optional_usd(
                    "explicit_cached_input_usd_per_mtok",
                    &self.explicit_cached_input_usd_per_mtok,
                )?,
                tiers: self.price_tiers.clone(),
            },
            enabled: self.enabled,
            created: 0,
        })
    }
}

/// An optional price: absent, `null` and `""` all mean "the input price".
fn optional_usd(field: &str, price: &Option<String>) -> Result<Option<Nanos>> {
    price
        .as_deref()
        .filter(|p| !p.is_empty())
        .map(|p| parse_usd(field, p))
        .transpose()
}

#[derive(Serialize, ToSchema)]
pub struct ModelList {
    pub data: Vec<ModelView>,
    /// Rows the gateway cannot read (e.g. malformed `price_tiers` written straight into
    /// the database): not served until `PUT /api/admin/models/{id}` replaces them or
    /// `DELETE` removes them.
    pub unreadable: Vec<UnreadableModelView>,
}

#[derive(Serialize, ToSchema)]
pub struct UnreadableModelView {
    pub model: String,
    /// Why the row does not read.
    pub error: String,
}

impl From<UnreadableModel> for UnreadableModelView {
    fn from(row: UnreadableModel) -> Self {
        UnreadableModelView {
            model: row.model,
            error: row.error,
        }
    }
}

/// A model as stored, for the audit trail: its view, or the unreadable row.
fn audited(stored: StoredModel, priced: bool) -> serde_json::Value {
    match stored {
        StoredModel::Readable(row) => serde_json::json!(ModelView::new(&row, priced)),
        StoredModel::Unreadable(row) => serde_json::json!(UnreadableModelView::from(row)),
    }
}

#[derive(Deserialize, ToSchema)]
pub struct ModelImport {
    pub models: Vec<ModelView>,
}

/// What an import did, per model.
#[derive(Serialize, ToSchema)]
pub struct ImportCounts {
    /// The format read: `tokenhub` (this API's export, or `catalog/models.json`),
    /// `litellm`, `openrouter` or `csv`.
    pub format: String,
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Entries left out (no token price, not a relayed mode, invalid or repeated id).
    pub skipped: usize,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportFormat {
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

async fn views(state: &AppState) -> Result<Vec<ModelView>> {
    let unpriced = state.store.unpriced_model_ids().await?;
    let rows = state.store.all_models().await?;
    Ok(rows
        .iter()
        .map(|row| ModelView::new(row, !unpriced.contains(&row.id)))
        .collect())
}

/// The whole catalogue, priced or not.
#[utoipa::path(get, path = "/api/admin/models", tag = "catalog",
    responses((status = 200, body = ModelList), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<ModelList>> {
    caller.require(Role::Admin)?;
    let unpriced = state.store.unpriced_model_ids().await?;
    let (rows, unreadable) = state.store.models_and_unreadable().await?;
    Ok(Json(ModelList {
        data: rows
            .iter()
            .map(|row| ModelView::new(row, !unpriced.contains(&row.id)))
            .collect(),
        unreadable: unreadable.into_iter().map(Into::into).collect(),
    }))
}

/// Add a model (ids are unique: an existing id is a conflict).
#[utoipa::path(post, path = "/api/admin/models", tag = "catalog", request_body = ModelView,
    responses((status = 201, body = ModelView), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<ModelView>,
) -> Result<(StatusCode, Json<ModelView>)> {
    caller.require(Role::Admin)?;
    let row = body.to_row()?;
    ops::create_models(&state.store, &[(row.clone(), false)]).await?;
    let created = ModelView::new(&ops::model(&state.store, &row.id).await?, true);
    audit::record(
        &state.store,
        &caller.actor(),
        "model.create",
        &format!("model:{}", row.id),
        None::<&()>,
        Some(&created),
    )
    .await;
    Ok((StatusCode::CREATED, Json(created)))
}

/// One model. Ids containing `/` are sent percent-encoded (`%2F`).
#[utoipa::path(get, path = "/api/admin/models/{id}", tag = "catalog", params(("id" = String, Path)),
    responses((status = 200, body = ModelView), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ModelView>> {
    caller.require(Role::Admin)?;
    let row = match ops::stored_model(&state.store, &id).await? {
        StoredModel::Readable(row) => row,
        StoredModel::Unreadable(unreadable) => {
            return Err(ManageError::new(
                Code::Conflict,
                format!(
                    "model '{id}' is stored but its row does not read ({}): PUT replaces it, DELETE removes it",
                    unreadable.error
                ),
            ));
        }
    };
    let priced = !state.store.unpriced_model_ids().await?.contains(&id);
    Ok(Json(ModelView::new(&row, priced)))
}

/// Replace a model's fields and prices (this prices an unpriced model, and repairs a row
/// listed as unreadable).
#[utoipa::path(put, path = "/api/admin/models/{id}", tag = "catalog", params(("id" = String, Path)),
    request_body = ModelView,
    responses((status = 200, body = ModelView), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<ModelView>,
) -> Result<Json<ModelView>> {
    caller.require(Role::Admin)?;
    let priced = !state.store.unpriced_model_ids().await?.contains(&id);
    let before = audited(ops::stored_model(&state.store, &id).await?, priced);
    let row = ModelRow {
        id: id.clone(),
        ..body.to_row()?
    };
    let after = ModelView::new(&ops::update_model(&state.store, &row).await?, true);
    audit::record(
        &state.store,
        &caller.actor(),
        "model.update",
        &format!("model:{id}"),
        Some(&before),
        Some(&after),
    )
    .await;
    Ok(Json(after))
}

/// Remove a model from the catalogue (a row listed as unreadable too).
#[utoipa::path(delete, path = "/api/admin/models/{id}", tag = "catalog", params(("id" = String, Path)),
    responses((status = 204), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    caller.require(Role::Admin)?;
    let before = audited(ops::delete_model(&state.store, &id).await?, true);
    audit::record(
        &state.store,
        &caller.actor(),
        "model.delete",
        &format!("model:{id}"),
        Some(&before),
        None::<&()>,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Every model and price, as JSON (`{"models":[…]}`, importable as is) or CSV.
#[utoipa::path(get, path = "/api/admin/models/export", tag = "catalog", params(ExportFormat),
    responses((status = 200, content((ModelImport = "application/json"), (String = "text/csv"))),
        (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Query(format): Query<ExportFormat>,
) -> Result<Response> {
    caller.require(Role::Admin)?;
    let models = views(&state).await?;
    match format.format.as_deref().unwrap_or("json") {
        "json" => Ok(Json(serde_json::json!({ "models": models })).into_response()),
        "csv" => {
            let mut out = String::new();
            csv::write_row(&mut out, &CSV_HEADER);
            for m in &models {
                csv::write_row(
                    &mut out,
                    &[
                        m.id.clone(),
                        m.provider.clone(),
                        m.context.to_string(),
                        m.input_usd_per_mtok.clone(),
                        m.output_usd_per_mtok.clone(),
                        m.cached_input_usd_per_mtok.clone().unwrap_or_default(),
                        m.cache_write_usd_per_mtok.clone().unwrap_or_default(),
                        m.enabled.to_string(),
                        m.cache_write_1h_usd_per_mtok.clone().unwrap_or_default(),
                        m.explicit_cached_input_usd_per_mtok
                            .clone()
                            .unwrap_or_default(),
                        tiers_cell(&m.price_tiers),
                    ],
                );
            }
            Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], out).into_response())
        }
        other => Err(ManageError::invalid(format!(
            "format '{other}' is not json or csv"
        ))),
    }
}

/// A model's tiers in one CSV cell: their JSON, or nothing when there are none.
fn tiers_cell(tiers: &[PriceTier]) -> String {
    if tiers.is_empty() {
        return String::new();
    }
    serde_json::to_string(tiers).unwrap_or_default()
}

fn from_csv(text: &str) -> Result<Vec<ModelView>> {
    let rows = csv::parse(text).map_err(ManageError::invalid)?;
    let Some((header_row, rows)) = rows.split_first() else {
        return Ok(Vec::new());
    };
    let column = |name: &str| header_row.iter().position(|h| h.trim() == name);
    let required = |name: &str| {
        column(name).ok_or_else(|| ManageError::invalid(format!("the CSV has no '{name}' column")))
    };
    let (id, input, output) = (
        required("id")?,
        required("input_usd_per_mtok")?,
        required("output_usd_per_mtok")?,
    );
    let (provider, context, cached, cache_write, enabled) = (
        column("provider"),
        column("context"),
        column("cached_input_usd_per_mtok"),
        column("cache_write_usd_per_mtok"),
        column("enabled"),
    );
    let (cache_write_1h, explicit_cached, tiers) = (
        column("cache_write_1h_usd_per_mtok"),
        column("explicit_cached_input_usd_per_mtok"),
        column("price_tiers"),
    );
    rows.iter()
        .enumerate()
        .map(|(line, row)| {
            let cell = |i: Option<usize>| {
                i.and_then(|i| row.get(i))
                    .map(|c| c.trim().to_string())
                    .unwrap_or_default()
            };
            let context = cell(context);
            Ok(ModelView {
                id: cell(Some(id)),
                provider: cell(provider),
                context: if context.is_empty() {
                    0
                } else {
                    context.parse().map_err(|_| {
                        ManageError::invalid(format!(
                            "line {}: context '{context}' is not a number",
                            line + 2
                        ))
                    })?
                },
                input_usd_per_mtok: cell(Some(input)),
                output_usd_per_mtok: cell(Some(output)),
                cached_input_usd_per_mtok: Some(cell(cached)).filter(|c| !c.is_empty()),
                cache_write_usd_per_mtok: Some(cell(cache_write)).filter(|c| !c.is_empty()),
                cache_write_1h_usd_per_mtok: Some(cell(cache_write_1h)).filter(|c| !c.is_empty()),
                explicit_cached_input_usd_per_mtok: Some(cell(explicit_cached))
                    .filter(|c| !c.is_empty()),
                price_tiers: PriceRules::tiers_from_json(Some(&cell(tiers))).map_err(|e| {
                    ManageError::invalid(format!("line {}: price_tiers: {e}", line + 2))
                })?,
                enabled: !matches!(cell(enabled).as_str(), "false" | "0"),
                priced: true,
            })
        })
        .collect()
}

/// Create or update many models at once, from JSON (the export's `{"models":[…]}`,
/// LiteLLM's `model_prices_and_context_window.json` or OpenRouter's `/api/v1/models`) or
/// CSV (`Content-Type: text/csv`, the export's columns). Says how many models were added,
/// updated, unchanged and skipped.
#[utoipa::path(post, path = "/api/admin/models/import", tag = "catalog",
    request_body(content((ModelImport = "application/json"), (String = "text/csv"))),
    responses((status = 200, body = ImportCounts), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn import(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ImportCounts>> {
    caller.require(Role::Admin)?;
    let is_csv = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/csv"));
    let text =
        std::str::from_utf8(&body).map_err(|_| ManageError::invalid("the file is not UTF-8"))?;
    let (format, counts) = if is_csv {
        let rows = from_csv(text)?
            .iter()
            .map(ModelView::to_row)
            .collect::<Result<Vec<_>>>()?;
        if rows.len() > MAX_IMPORT {
            return Err(ManageError::invalid(format!(
                "at most {MAX_IMPORT} models per import"
            )));
        }
        let entries: Vec<_> = rows.into_iter().map(CatalogueEntry::from_row).collect();
        (
            "csv".to_string(),
            ops::import_entries(&state.store, &entries).await?,
        )
    } else {
        let (format, counts) = ops::import_catalogue(&state.store, text).await?;
        (format.name().to_string(), counts)
    };
    audit::record(
        &state.store,
        &caller.actor(),
        "model.import",
        "models",
        None::<&()>,
        Some(&serde_json::json!({"format": format, "counts": counts})),
    )
    .await;
    Ok(Json(ImportCounts {
        format,
        added: counts.added,
        updated: counts.updated,
        unchanged: counts.unchanged,
        skipped: counts.skipped,
    }))
}
