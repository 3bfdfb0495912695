//! Channel and model editing with validation: http(s) base URLs, non-negative prices,
//! unique model ids; and importing the model list a channel's upstream reports.
//! Every change bumps the revision, so running gateways reload it without a restart.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;

use super::AccountError;
use crate::catalog::{ChannelKind, valid_model_id};
use crate::ledger::money::Nanos;
use crate::providers::catalogue::{self, CatalogueEntry};
use crate::providers::http::HttpClient;
use crate::providers::openai_compat::endpoint;
use crate::providers::transport;
use crate::providers::urls::{ParsedUrls, http_uri};
use crate::providers::{FailureKind, UpstreamFailure};
use crate::store::{ChannelRow, ModelRow, Store, StoreError, UnreadableModel};

const MAX_NAME_LEN: usize = 128;
const MAX_MODELS_PER_CHANNEL: usize = 5000;
/// An upstream's model list is read up to this size.
const MAX_MODELS_BODY: usize = 8 * 1024 * 1024;
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(20);

fn store_error(error: StoreError) -> AccountError {
    match error {
        StoreError::Conflict(m) => AccountError::Conflict(m),
        StoreError::NotFound(m) => AccountError::NotFound(m),
        other => AccountError::Store(other),
    }
}

/// Checks a channel before it is written.
pub fn validate_channel(channel: &ChannelRow) -> Result<(), AccountError> {
    let invalid = |m: String| Err(AccountError::Invalid(m));
    if channel.name.trim().is_empty() || channel.name.len() > MAX_NAME_LEN {
        return invalid("a channel name has 1 to 128 characters".into());
    }
    let Some(kind) = ChannelKind::parse(&channel.kind) else {
        return invalid(format!("unknown channel type '{}'", channel.kind));
    };
    if kind != ChannelKind::Demo
        && let Err(why) = http_uri(&channel.base_url)
    {
        return invalid(format!("base_url: {why}"));
    }
    if channel.weight < 0 {
        return invalid("weight must not be negative".into());
    }
    let keys = channel
        .api_key
        .as_deref()
        .map(crate::catalog::keys::split_keys)
        .unwrap_or_default();
    if keys.len() > crate::catalog::MAX_KEYS_PER_CHANNEL {
        return invalid(format!(
            "a channel holds at most {} keys",
            crate::catalog::MAX_KEYS_PER_CHANNEL
        ));
    }
    if keys.len() != keys.iter().collect::<BTreeSet<_>>().len() {
        return invalid("a key is listed twice".into());
    }
    if channel.models.len() > MAX_MODELS_PER_CHANNEL {
        return invalid(format!(
            "a channel serves at most {MAX_MODELS_PER_CHANNEL} models"
        ));
    }
    let mut seen = BTreeSet::new();
    for model in &channel.models {
        if !valid_model_id(model) {
            return invalid(format!("'{model}' is not a valid model id"));
        }
        if !seen.insert(model.as_str()) {
            return invalid(format!("model '{model}' is listed twice"));
        }
    }
    if let Some(unknown) = channel
        .model_map
        .keys()
        .find(|k| !seen.contains(k.as_str()))
    {
        return invalid(format!(
            "model_map names '{unknown}', which the channel does not serve"
        ));
    }
    Ok(())
}

/// Checks a model before it is written.
pub fn validate_model(model: &ModelRow) -> Result<(), AccountError> {
    if !valid_model_id(&model.id) {
        return Err(AccountError::Invalid(format!(
            "'{}' is not a valid model id",
            model.id
        )));
    }
    let negative = model.input_price < Nanos::ZERO
        || model.output_price < Nanos::ZERO
        || model.cached_input_price.is_some_and(|p| p < Nanos::ZERO)
        || model.cache_write_price.is_some_and(|p| p < Nanos::ZERO)
        || model.rules.any_negative();
    if negative {
        return Err(AccountError::Invalid("prices must not be negative".into()));
    }
    crate::ledger::price_tiers::validate(&model.rules.tiers).map_err(AccountError::Invalid)?;
    if model.context < 0 {
        return Err(AccountError::Invalid("context must not be negative".into()));
    }
    Ok(())
}

pub async fn channel(store: &Store, id: i64) -> Result<ChannelRow, AccountError> {
    store
        .channel_by_id(id)
        .await?
        .ok_or_else(|| AccountError::NotFound(format!("no channel with id {id}")))
}

pub async fn create_channel(
    store: &Store,
    channel: &ChannelRow,
) -> Result<ChannelRow, AccountError> {
    validate_channel(channel)?;
    store.create_channel(channel).await.map_err(store_error)
}

pub async fn update_channel(
    store: &Store,
    channel: &ChannelRow,
) -> Result<ChannelRow, AccountError> {
    validate_channel(channel)?;
    store.update_channel(channel).await.map_err(store_error)?;
    self::channel(store, channel.id).await
}

pub async fn delete_channel(store: &Store, id: i64) -> Result<ChannelRow, AccountError> {
    let before = self::channel(store, id).await?;
    store.delete_channel(id).await.map_err(store_error)?;
    Ok(before)
}

pub async fn model(store: &Store, id: &str) -> Result<ModelRow, AccountError> {
    store
        .model_by_id(id)
        .await?
        .ok_or_else(|| AccountError::NotFound(format!("no model '{id}'")))
}

/// A model as stored: its row, or why the row does not read (which an admin replaces
/// with `update_model` or removes with `delete_model`).
#[derive(Debug)]
pub enum StoredModel {
    Readable(ModelRow),
    Unreadable(UnreadableModel),
}

pub async fn stored_model(store: &Store, id: &str) -> Result<StoredModel, AccountError> {
    let (models, unreadable) = store.models_and_unreadable().await?;
    if let Some(model) = models.into_iter().find(|m| m.id == id) {
        return Ok(StoredModel::Readable(model));
    }
    unreadable
        .into_iter()
        .find(|u| u.model == id)
        .map(StoredModel::Unreadable)
        .ok_or_else(|| AccountError::NotFound(format!("no model '{id}'")))
}

/// Creates models in one transaction (all or none); `unpriced` ones wait for prices.
pub async fn create_models(store: &Store, models: &[(ModelRow, bool)]) -> Result<(), AccountError> {
    let mut ids = BTreeSet::new();
    for (model, _) in models {
        validate_model(model)?;
        if !ids.insert(model.id.as_str()) {
            return Err(AccountError::Invalid(format!(
                "model '{}' is listed twice",
                model.id
            )));
        }
    }
    store.create_models(models).await.map_err(store_error)
}

/// Overwrites a model (which also marks it priced).
pub async fn update_model(store: &Store, model: &ModelRow) -> Result<ModelRow, AccountError> {
    validate_model(model)?;
    store.update_model(model).await.map_err(store_error)?;
    self::model(store, &model.id).await
}

/// What a catalogue import did, per model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CatalogueImport {
    /// New catalogue rows.
    pub added: usize,
    /// Rows whose prices, context or fields changed (or that were waiting for a price).
    pub updated: usize,
    /// Rows the file gives exactly as stored.
    pub unchanged: usize,
    /// Entries left out: no token price, a mode the gateway does not relay, an invalid
    /// id, or an id listed earlier in the same file.
    pub skipped: usize,
}

/// Imports a catalogue file in any format `providers::catalogue` reads: new models are
/// added, known ones get the file's prices (what the file does not say, such as a LiteLLM
/// file's missing price tiers, stays as stored). An operator's import overwrites prices
/// edited in the admin panel: that is what it is for (docs/catalogue.md).
pub async fn import_catalogue(
    store: &Store,
    text: &str,
) -> Result<(catalogue::Format, CatalogueImport), AccountError> {
    let read = catalogue::parse(text).map_err(|e| AccountError::Invalid(e.to_string()))?;
    let counts = import_entries(store, &read.entries).await?;
    Ok((
        read.format,
        CatalogueImport {
            skipped: counts.skipped + read.skipped,
            ..counts
        },
    ))
}

/// Adds or updates `entries` (the first of a repeated id wins).
pub async fn import_entries(
    store: &Store,
    entries: &[CatalogueEntry],
) -> Result<CatalogueImport, AccountError> {
    let stored: HashMap<String, ModelRow> = store
        .all_models()
        .await?
        .into_iter()
        .map(|m| (m.id.clone(), m))
        .collect();
    let unpriced = store.unpriced_model_ids().await?;
    let mut counts = CatalogueImport::default();
    let mut seen = BTreeSet::new();
    let mut creates = Vec::new();
    let mut updates = Vec::new();
    for entry in entries {
        if !seen.insert(entry.id.as_str()) {
            counts.skipped += 1;
            continue;
        }
        let row = match stored.get(&entry.id) {
            Some(before) => {
                let after = entry.merged_into(before);
                if after == *before && !unpriced.contains(&entry.id) {
                    counts.unchanged += 1;
                    continue;
                }
                after
            }
            None => entry.to_row(),
        };
        if validate_model(&row).is_err() {
            counts.skipped += 1;
        } else if stored.contains_key(&row.id) {
            updates.push(row);
        } else {
            creates.push((row, false));
        }
    }
    store.create_models(&creates).await.map_err(store_error)?;
    for row in &updates {
        store.update_model(row).await.map_err(store_error)?;
    }
    counts.added = creates.len();
    counts.updated = updates.len();
    Ok(counts)
}

/// Serves `model_id` through channel `channel_id`: the model joins the price list from the
/// shipped catalogue if it is not there yet, and the channel's model list if it is not on
/// it. Returns the model and the channel as written.
pub async fn attach_model(
    store: &Store,
    model_id: &str,
    channel_id: i64,
) -> Result<(ModelRow, ChannelRow), AccountError> {
    let mut channel = self::channel(store, channel_id).await?;
    let row = match store.model_by_id(model_id).await? {
        Some(row) => row,
        None => {
            let entry = catalogue::builtin_entry(model_id).ok_or_else(|| {
                AccountError::NotFound(format!("no model '{model_id}' in the catalogue"))
            })?;
            create_models(store, &[(entry.to_row(), false)]).await?;
            self::model(store, model_id).await?
        }
    };
    if !channel.models.iter().any(|m| m == model_id) {
        channel.models.push(model_id.to_string());
        channel = update_channel(store, &channel).await?;
    }
    Ok((row, channel))
}

/// Deletes a model, readable or not; what it was.
pub async fn delete_model(store: &Store, id: &str) -> Result<StoredModel, AccountError> {
    let before = stored_model(store, id).await?;
    store.delete_model(id).await.map_err(store_error)?;
    Ok(before)
}

/// The model ids a channel's upstream reports at its `/models` endpoint.
pub async fn upstream_models(
    client: &HttpClient,
    channel: &ChannelRow,
) -> Result<Vec<String>, AccountError> {
    let failed =
        |m: String| AccountError::Upstream(format!("cannot list the upstream's models: {m}"));
    if ChannelKind::parse(&channel.kind) == Some(ChannelKind::Demo) {
        return Ok(channel.models.clone());
    }
    // The first of the channel's keys: a channel with several stores them in one field.
    let key = channel
        .api_key
        .clone()
        .filter(|k| !k.is_empty())
        .or_else(|| {
            channel
                .api_key_env
                .as_deref()
                .and_then(|v| std::env::var(v).ok())
        })
        .and_then(|keys| crate::catalog::keys::split_keys(&keys).into_iter().next());
    // No error text below carries the URL or the key (the key is a header).
    let url = ParsedUrls::default()
        .parse(endpoint(&channel.base_url, "models"))
        .map_err(|f| failed(f.into_message()))?;
    let mut request = http::Request::get(url.uri);
    if let Some(key) = key {
        request = request.header(http::header::AUTHORIZATION, format!("Bearer {key}"));
    }
    let read = async {
        let response = transport::send(client, request, Bytes::new(), UPSTREAM_TIMEOUT).await?;
        if !response.status().is_success() {
            return Err(UpstreamFailure::new(
                FailureKind::Status(response.status().as_u16()),
                format!("HTTP {}", response.status().as_u16()),
            ));
        }
        let mut body = Vec::new();
        let mut stream = transport::body_stream(response.into_body());
        while let Some(chunk) = stream.next().await {
            body.extend_from_slice(&chunk?);
            if body.len() > MAX_MODELS_BODY {
                return Err(UpstreamFailure::new(
                    FailureKind::Protocol,
                    "the model list is too large",
                ));
            }
        }
        Ok(body)
    };
    let body = tokio::time::timeout(UPSTREAM_TIMEOUT, read)
        .await
        .map_err(|_| failed("the upstream did not answer in time".into()))?
        .map_err(|f| failed(f.into_message()))?;
    #[derive(serde::Deserialize)]
    struct Listed {
        id: String,
    }
    #[derive(serde::Deserialize)]
    struct List {
        data: Vec<Listed>,
    }
    let list: List = serde_json::from_slice(&body).map_err(|e| failed(e.to_string()))?;
    let ids: BTreeSet<String> = list
        .data
        .into_iter()
        .map(|m| m.id)
        .filter(|id| valid_model_id(id))
        .collect();
    Ok(ids.into_iter().collect())
}

/// What an import adds, besides the chosen ids.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    pub provider: String,
    /// Prices for models new to the catalogue; without them those models are unpriced
    /// (refused until an operator sets prices).
    pub prices: Option<(Nanos, Nanos)>,
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// New catalogue entries.
    pub created: Vec<String>,
    /// Of those, the ones still without a price.
    pub unpriced: Vec<String>,
    /// Models newly routed to the channel.
    pub added_to_channel: Vec<String>,
}

/// Adds the chosen upstream models to the catalogue (if missing) and to the channel, in
/// one action. Chosen ids the upstream does not report are refused.
pub async fn import_models(
    store: &Store,
    client: &HttpClient,
    channel_id: i64,
    chosen: &[String],
    options: &ImportOptions,
) -> Result<ImportReport, AccountError> {
    let mut channel = self::channel(store, channel_id).await?;
    let offered: BTreeSet<String> = upstream_models(client, &channel)
        .await?
        .into_iter()
        .collect();
    if let Some(missing) = chosen.iter().find(|id| !offered.contains(*id)) {
        return Err(AccountError::Invalid(format!(
            "the upstream does not offer '{missing}'"
        )));
    }
    let known: BTreeSet<String> = store
        .all_models()
        .await?
        .into_iter()
        .map(|m| m.id)
        .collect();
    let chosen: BTreeSet<&String> = chosen.iter().collect();
    let mut report = ImportReport::default();
    let mut new_models = Vec::new();
    for id in chosen.iter().filter(|id| !known.contains(**id)) {
        let (input, output) = options.prices.unwrap_or((Nanos::ZERO, Nanos::ZERO));
        let row = ModelRow {
            id: (*id).clone(),
            provider: if options.provider.is_empty() {
                channel.name.clone()
            } else {
                options.provider.clone()
            },
            context: 0,
            input_price: input,
            output_price: output,
            cached_input_price: None,
            cache_write_price: None,
            rules: Default::default(),
            enabled: true,
            created: 0,
        };
        report.created.push(row.id.clone());
        if options.prices.is_none() {
            report.unpriced.push(row.id.clone());
        }
        new_models.push((row, options.prices.is_none()));
    }
    create_models(store, &new_models).await?;
    let served: BTreeSet<String> = channel.models.iter().cloned().collect();
    for id in chosen.into_iter().filter(|id| !served.contains(*id)) {
        channel.models.push(id.clone());
        report.added_to_channel.push(id.clone());
    }
    if !report.added_to_channel.is_empty() {
        update_channel(store, &channel).await?;
    }
    Ok(report)
}

/// Keeps a channel's secret when an edit does not send a new one.
pub fn merge_secret(existing: &ChannelRow, new_key: Option<String>) -> Option<String> {
    match new_key {
        Some(key) if key.is_empty() => None,
        Some(key) => Some(key),
        None => existing.api_key.clone(),
    }
}

pub use crate::catalog::keys::mask_secret;

/// The model map of a channel as given, for callers that build one from a JSON object.
pub fn model_map(pairs: impl IntoIterator<Item = (String, String)>) -> BTreeMap<String, String> {
    pairs.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel() -> ChannelRow {
        ChannelRow {
            id: 0,
            name: "c".into(),
            kind: "openai".into(),
            base_url: "https://example.com".into(),
            api_key: None,
            api_key_env: None,
            models: vec!["a".into()],
            model_map: BTreeMap::new(),
            priority: 0,
            weight: 1,
            enabled: true,
            limits: Default::default(),
            responses_native: false,
        }
    }

    #[test]
    fn channels_are_validated() {
        assert!(validate_channel(&channel()).is_ok());
        let ftp = ChannelRow {
            base_url: "ftp://x".into(),
            ..channel()
        };
        assert!(validate_channel(&ftp).is_err());
        let with_credentials = ChannelRow {
            base_url: "https://user:secret@api.example.com".into(),
            ..channel()
        };
        let refusal = validate_channel(&with_credentials).unwrap_err().to_string();
        assert!(
            refusal.contains("credentials") && !refusal.contains("secret"),
            "{refusal}"
        );
        let twice = ChannelRow {
            models: vec!["a".into(), "a".into()],
            ..channel()
        };
        assert!(validate_channel(&twice).is_err());
        let same_key = ChannelRow {
            api_key: Some("sk-one\nsk-one".into()),
            ..channel()
        };
        assert!(validate_channel(&same_key).is_err());
        let many_keys = ChannelRow {
            api_key: Some(
                (0..65)
                    .map(|i| format!("k{i}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            ..channel()
        };
        assert!(validate_channel(&many_keys).is_err());
        let weight = ChannelRow {
            weight: -1,
            ..channel()
        };
        assert!(validate_channel(&weight).is_err());
        let map = ChannelRow {
            model_map: model_map([("b".into(), "c".into())]),
            ..channel()
        };
        assert!(validate_channel(&map).is_err());
        assert_eq!(mask_secret("sk-1234567890abcd"), "sk-…abcd");
        assert_eq!(mask_secret("short"), "…");
    }
}
