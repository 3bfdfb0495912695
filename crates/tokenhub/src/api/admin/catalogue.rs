//! The full model catalogue for admins: `/api/admin/catalogue` lists the shipped
//! catalogue (`catalog/models.json`) together with the models this deployment prices,
//! each marked served or not; `/api/admin/catalogue/attach` enables one by attaching it
//! to a channel. Prices are decimal USD per 1M tokens.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{Body, ErrorBody, Result};
use super::wire::usd;
use crate::accounts::catalog_admin as ops;
use crate::accounts::{Role, audit};
use crate::api::AppState;
use crate::providers::catalogue::{self, CatalogueEntry};

#[derive(Serialize, ToSchema)]
pub struct CatalogueModel {
    pub id: String,
    pub provider: String,
    /// Context window in tokens (0 = unknown).
    pub context: i64,
    pub input_usd_per_mtok: String,
    pub output_usd_per_mtok: String,
    /// `null` = the input price.
    pub cached_input_usd_per_mtok: Option<String>,
    /// What the model takes in (`text`, `image`, `audio`, `pdf`).
    pub input_modalities: Vec<String>,
    /// What it gives back (`text`, `audio`, `embedding`).
    pub output_modalities: Vec<String>,
    /// Where the prices come from (the shipped catalogue's note), if known.
    pub source: Option<String>,
    /// In this deployment's price list (the prices shown are then the billed ones).
    pub priced: bool,
    /// A usable channel serves it now.
    pub served: bool,
    /// The channels that list it.
    pub channels: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CatalogueList {
    pub data: Vec<CatalogueModel>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Attach {
    pub model: String,
    pub channel_id: i64,
}

fn view(
    entry: &CatalogueEntry,
    priced: bool,
    served: bool,
    channels: Vec<String>,
) -> CatalogueModel {
    CatalogueModel {
        id: entry.id.clone(),
        provider: entry.provider.clone(),
        context: entry.context,
        input_usd_per_mtok: usd(entry.input),
        output_usd_per_mtok: usd(entry.output),
        cached_input_usd_per_mtok: entry.cached_input.map(usd),
        input_modalities: entry.modalities.input.clone(),
        output_modalities: entry.modalities.output.clone(),
        source: entry.source.clone(),
        priced,
        served,
        channels,
    }
}

/// Every model of the shipped catalogue and of this deployment's price list, by id.
#[utoipa::path(get, path = "/api/admin/catalogue", tag = "catalog",
    responses((status = 200, body = CatalogueList), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<CatalogueList>> {
    caller.require(Role::Admin)?;
    let snapshot = state.relay.catalog.load_full();
    let mut listed_by: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for channel in state.store.all_channels().await? {
        for model in &channel.models {
            listed_by
                .entry(model.clone())
                .or_default()
                .push(channel.name.clone());
        }
    }
    let mut entries: BTreeMap<String, (CatalogueEntry, bool)> = catalogue::builtin()
        .iter()
        .map(|e| (e.id.clone(), (e.clone(), false)))
        .collect();
    for row in state.store.all_models().await? {
        let shipped = entries.remove(&row.id).map(|(e, _)| e);
        let mut entry = CatalogueEntry::from_row(row);
        if let Some(shipped) = shipped {
            entry.modalities = shipped.modalities;
            entry.source = shipped.source;
        }
        entries.insert(entry.id.clone(), (entry, true));
    }
    let data = entries
        .into_values()
        .map(|(entry, priced)| {
            let served = !snapshot.channels_for(&entry.id).is_empty();
            let channels = listed_by.remove(&entry.id).unwrap_or_default();
            view(&entry, priced, served, channels)
        })
        .collect();
    Ok(Json(CatalogueList { data }))
}

/// Serve a catalogue model through a channel: the model joins the price list (at the
/// shipped catalogue's prices) if it is not there yet, and the channel's model list.
#[utoipa::path(post, path = "/api/admin/catalogue/attach", tag = "catalog", request_body = Attach,
    responses((status = 200, body = CatalogueModel), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn attach(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<Attach>,
) -> Result<Json<CatalogueModel>> {
    caller.require(Role::Admin)?;
    let (row, channel) = ops::attach_model(&state.store, &body.model, body.channel_id).await?;
    audit::record(
        &state.store,
        &caller.actor(),
        "catalogue.attach",
        &format!("channel:{}", channel.id),
        None::<&()>,
        Some(&serde_json::json!({"model": row.id, "channel": channel.name})),
    )
    .await;
    let mut entry = CatalogueEntry::from_row(row);
    if let Some(shipped) = catalogue::builtin_entry(&entry.id) {
        entry.modalities = shipped.modalities.clone();
        entry.source = shipped.source.clone();
    }
    let served = !state
        .relay
        .catalog
        .load_full()
        .channels_for(&entry.id)
        .is_empty();
    Ok(Json(view(&entry, true, served, vec![channel.name])))
}
