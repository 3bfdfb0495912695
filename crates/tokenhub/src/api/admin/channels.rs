//! Channels (upstream accounts): `/api/admin/channels…` (admin). Upstream keys are
//! write-only: responses say whether one is set and show a mask, never the key.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::channel_limits::{ChannelLimitsPatch, ChannelLimitsView};
use super::error::{Body, ErrorBody, Path, Result};
use super::wire::parse_usd;
use crate::accounts::catalog_admin::{self as ops, ImportOptions};
use crate::accounts::{Role, audit};
use crate::api::AppState;
use crate::catalog::keys::{join_keys, split_keys};
use crate::store::ChannelRow;

#[derive(Serialize, ToSchema, Clone)]
pub struct ChannelView {
    pub id: i64,
    pub name: String,
    /// `openai` (any OpenAI-compatible host), a vendor dialect (`deepseek`, `qwen`,
    /// `zhipu`, `doubao`, `moonshot`), `anthropic`, `gemini` or `demo`.
    #[serde(rename = "type")]
    pub kind: String,
    pub base_url: String,
    /// Whether an upstream key is stored (it is never returned).
    pub api_key_set: bool,
    /// The first key, e.g. `sk-…abcd`.
    pub api_key_masked: Option<String>,
    /// Every stored key, masked, in the order they take turns.
    pub api_keys_masked: Vec<String>,
    /// Environment variable the key is read from, if any.
    pub api_key_env: Option<String>,
    pub models: Vec<String>,
    /// Public model id → upstream model id.
    pub model_map: BTreeMap<String, String>,
    pub priority: i64,
    pub weight: i64,
    pub enabled: bool,
    #[serde(flatten)]
    pub limits: ChannelLimitsView,
    /// The upstream serves OpenAI's Responses API itself: `/v1/responses` is passed
    /// through to it instead of being translated to chat completions.
    pub responses_native: bool,
}

impl From<&ChannelRow> for ChannelView {
    fn from(row: &ChannelRow) -> Self {
        let keys = row.api_key.as_deref().map(split_keys).unwrap_or_default();
        let key = keys.first();
        ChannelView {
            id: row.id,
            name: row.name.clone(),
            kind: row.kind.clone(),
            base_url: row.base_url.clone(),
            api_key_set: key.is_some(),
            api_key_masked: key.map(|k| ops::mask_secret(k)),
            api_keys_masked: keys.iter().map(|k| ops::mask_secret(k)).collect(),
            api_key_env: row.api_key_env.clone(),
            models: row.models.clone(),
            model_map: row.model_map.clone(),
            priority: row.priority,
            weight: row.weight,
            enabled: row.enabled,
            limits: ChannelLimitsView::from_row(&row.limits),
            responses_native: row.responses_native,
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct NewChannel {
    pub name: String,
    #[serde(rename = "type", default = "openai")]
    pub kind: String,
    #[serde(default)]
    pub base_url: String,
    pub api_key: Option<String>,
    /// Several upstream keys, used in turn, each with its own health (added to `api_key`).
    #[serde(default)]
    pub api_keys: Vec<String>,
    pub api_key_env: Option<String>,
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default)]
    pub model_map: BTreeMap<String, String>,
    #[serde(default)]
    pub priority: i64,
    #[serde(default = "one")]
    pub weight: i64,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(flatten)]
    pub limits: ChannelLimitsPatch,
    /// See `ChannelView::responses_native`; default false.
    #[serde(default)]
    pub responses_native: bool,
}

fn openai() -> String {
    "openai".into()
}

fn one() -> i64 {
    1
}

fn yes() -> bool {
    true
}

/// Omitted members stay. `api_key`: a new key replaces every stored one, `""` removes
/// them; `api_keys`: the new list of keys (`[]` removes them). Timeouts and
/// `max_concurrency`: a number replaces, `0` goes back to the default.
#[derive(Deserialize, ToSchema, Default)]
pub struct ChannelPatch {
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub base_url: Option<String>,
    pub api_key: Option<String>,
    pub api_keys: Option<Vec<String>>,
    pub api_key_env: Option<String>,
    pub models: Option<Vec<String>>,
    pub model_map: Option<BTreeMap<String, String>>,
    pub priority: Option<i64>,
    pub weight: Option<i64>,
    pub enabled: Option<bool>,
    #[serde(flatten)]
    pub limits: ChannelLimitsPatch,
    pub responses_native: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct ChannelList {
    pub data: Vec<ChannelView>,
}

#[derive(Serialize, ToSchema)]
pub struct UpstreamModels {
    /// Model ids the upstream's `/models` endpoint reports.
    pub data: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct ImportBody {
    /// Upstream model ids to add to the catalogue (if new) and to this channel.
    pub models: Vec<String>,
    /// Provider label for new catalogue entries (default: the channel's name).
    #[serde(default)]
    pub provider: String,
    /// Prices for new entries, decimal USD per 1M tokens. Without both, new models are
    /// unpriced and refused until an operator prices them.
    pub input_usd_per_mtok: Option<String>,
    pub output_usd_per_mtok: Option<String>,
}

#[derive(Serialize, ToSchema, Clone)]
pub struct ImportResult {
    pub created: Vec<String>,
    pub unpriced: Vec<String>,
    pub added_to_channel: Vec<String>,
}

/// All channels.
#[utoipa::path(get, path = "/api/admin/channels", tag = "catalog",
    responses((status = 200, body = ChannelList), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<ChannelList>> {
    caller.require(Role::Admin)?;
    let rows = state.store.all_channels().await?;
    Ok(Json(ChannelList {
        data: rows.iter().map(ChannelView::from).collect(),
    }))
}

/// Create a channel; it serves requests after the next reload.
#[utoipa::path(post, path = "/api/admin/channels", tag = "catalog", request_body = NewChannel,
    responses((status = 201, body = ChannelView), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<NewChannel>,
) -> Result<(StatusCode, Json<ChannelView>)> {
    caller.require(Role::Admin)?;
    let row = ChannelRow {
        id: 0,
        name: body.name.trim().to_string(),
        kind: body.kind,
        base_url: body.base_url.trim().to_string(),
        api_key: join_keys(
            &body
                .api_key
                .iter()
                .flat_map(|k| split_keys(k))
                .chain(body.api_keys)
                .collect::<Vec<_>>(),
        ),
        api_key_env: body.api_key_env.filter(|k| !k.is_empty()),
        models: body.models,
        model_map: body.model_map,
        priority: body.priority,
        weight: body.weight,
        enabled: body.enabled,
        limits: ChannelLimitsView::default().merged(body.limits),
        responses_native: body.responses_native,
    };
    let created = ChannelView::from(&ops::create_channel(&state.store, &row).await?);
    audit::record(
        &state.store,
        &caller.actor(),
        "channel.create",
        &format!("channel:{}", created.id),
        None::<&()>,
        Some(&created),
    )
    .await;
    Ok((StatusCode::CREATED, Json(created)))
}

/// One channel.
#[utoipa::path(get, path = "/api/admin/channels/{id}", tag = "catalog", params(("id" = i64, Path)),
    responses((status = 200, body = ChannelView), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<ChannelView>> {
    caller.require(Role::Admin)?;
    Ok(Json(ChannelView::from(
        &ops::channel(&state.store, id).await?,
    )))
}

/// Change a channel; running gateways pick it up at their next reload.
#[utoipa::path(patch, path = "/api/admin/channels/{id}", tag = "catalog", params(("id" = i64, Path)),
    request_body = ChannelPatch,
    responses((status = 200, body = ChannelView), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Body(patch): Body<ChannelPatch>,
) -> Result<Json<ChannelView>> {
    caller.require(Role::Admin)?;
    let current = ops::channel(&state.store, id).await?;
    let before = ChannelView::from(&current);
    let row = ChannelRow {
        id,
        name: patch
            .name
            .map_or(current.name.clone(), |n| n.trim().to_string()),
        kind: patch.kind.unwrap_or(current.kind.clone()),
        base_url: patch
            .base_url
            .map_or(current.base_url.clone(), |u| u.trim().to_string()),
        api_key: match patch.api_keys {
            Some(keys) => join_keys(&keys),
            None => ops::merge_secret(&current, patch.api_key),
        },
        api_key_env: match patch.api_key_env {
            Some(env) if env.is_empty() => None,
            Some(env) => Some(env),
            None => current.api_key_env.clone(),
        },
        models: patch.models.unwrap_or(current.models.clone()),
        model_map: patch.model_map.unwrap_or(current.model_map.clone()),
        priority: patch.priority.unwrap_or(current.priority),
        weight: patch.weight.unwrap_or(current.weight),
        enabled: patch.enabled.unwrap_or(current.enabled),
        limits: before.limits.merged(patch.limits),
        responses_native: patch.responses_native.unwrap_or(current.responses_native),
    };
    let after = ChannelView::from(&ops::update_channel(&state.store, &row).await?);
    audit::record(
        &state.store,
        &caller.actor(),
        "channel.update",
        &format!("channel:{id}"),
        Some(&before),
        Some(&after),
    )
    .await;
    Ok(Json(after))
}

/// Delete a channel (its usage records keep its id).
#[utoipa::path(delete, path = "/api/admin/channels/{id}", tag = "catalog", params(("id" = i64, Path)),
    responses((status = 204), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode> {
    caller.require(Role::Admin)?;
    let before = ChannelView::from(&ops::delete_channel(&state.store, id).await?);
    audit::record(
        &state.store,
        &caller.actor(),
        "channel.delete",
        &format!("channel:{id}"),
        Some(&before),
        None::<&()>,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The model ids the channel's upstream reports (`GET {base_url}/models`).
#[utoipa::path(get, path = "/api/admin/channels/{id}/upstream-models", tag = "catalog",
    params(("id" = i64, Path)),
    responses((status = 200, body = UpstreamModels), (status = "4XX", body = ErrorBody), (status = 502, body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn upstream_models(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<UpstreamModels>> {
    caller.require(Role::Admin)?;
    let channel = ops::channel(&state.store, id).await?;
    let data = ops::upstream_models(&state.relay.clients.default_client(), &channel).await?;
    Ok(Json(UpstreamModels { data }))
}

/// Add chosen upstream models to the catalogue and to this channel, in one action.
#[utoipa::path(post, path = "/api/admin/channels/{id}/import-models", tag = "catalog",
    params(("id" = i64, Path)), request_body = ImportBody,
    responses((status = 200, body = ImportResult), (status = "4XX", body = ErrorBody), (status = 502, body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn import_models(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Body(body): Body<ImportBody>,
) -> Result<Json<ImportResult>> {
    caller.require(Role::Admin)?;
    let prices = match (&body.input_usd_per_mtok, &body.output_usd_per_mtok) {
        (Some(input), Some(output)) => Some((
            parse_usd("input_usd_per_mtok", input)?,
            parse_usd("output_usd_per_mtok", output)?,
        )),
        _ => None,
    };
    let options = ImportOptions {
        provider: body.provider,
        prices,
    };
    let report = ops::import_models(
        &state.store,
        &state.relay.clients.default_client(),
        id,
        &body.models,
        &options,
    )
    .await?;
    let result = ImportResult {
        created: report.created,
        unpriced: report.unpriced,
        added_to_channel: report.added_to_channel,
    };
    audit::record(
        &state.store,
        &caller.actor(),
        "channel.import_models",
        &format!("channel:{id}"),
        None::<&()>,
        Some(&result),
    )
    .await;
    Ok(Json(result))
}
