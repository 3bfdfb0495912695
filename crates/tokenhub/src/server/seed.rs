//! What `serve` writes into the database at start: the built-in catalogue (inserted where
//! missing) and the configuration file's models and channels (overwriting). Each set is
//! applied only when it differs from the one last applied (a SHA-256 in
//! `applied_config`), so an admin's later edit (a channel disabled in the admin panel)
//! survives restarts with the same file, and an edited file still wins.

use serde_json::json;
use sha2::{Digest, Sha256};

use super::StartError;
use crate::config::{ChannelConfig, ModelConfig, Settings};
use crate::providers::presets;
use crate::store::{ChannelRow, ModelRow, SeedSource, Store};

pub async fn apply_seeds(store: &Store, settings: &Settings) -> Result<(), StartError> {
    let models = presets::builtin_models();
    let channels = presets::preset_channels();
    let built_in = digest(&models, &[], &channels);
    if store.applied_seeds(SeedSource::BuiltIn).await?.as_deref() != Some(&built_in) {
        for model in &models {
            store.seed_model(model).await?;
        }
        for channel in &channels {
            store.seed_channel(channel).await?;
        }
        store
            .set_applied_seeds(SeedSource::BuiltIn, &built_in)
            .await?;
    }
    let models: Vec<ModelRow> = settings
        .models
        .iter()
        .map(model_row)
        .collect::<Result<_, _>>()?;
    let fallbacks: Vec<(&str, &[String])> = settings
        .models
        .iter()
        .filter_map(|m| Some((m.id.as_str(), m.fallbacks.as_deref()?)))
        .collect();
    let channels: Vec<ChannelRow> = settings.channels.iter().map(channel_row).collect();
    let file = digest(&models, &fallbacks, &channels);
    if store
        .applied_seeds(SeedSource::ConfigFile)
        .await?
        .as_deref()
        == Some(&file)
    {
        return Ok(());
    }
    for model in &models {
        store.upsert_model(model).await?;
    }
    for (model, fallbacks) in fallbacks {
        store.set_fallbacks(model, fallbacks).await?;
    }
    for channel in &channels {
        store.upsert_channel(channel).await?;
    }
    store
        .set_applied_seeds(SeedSource::ConfigFile, &file)
        .await?;
    tracing::info!("configuration file applied to the database");
    Ok(())
}

/// A digest of every field that is written, spelled out so that no `Debug` masking (of a
/// key, say) can hide a change.
fn digest(models: &[ModelRow], fallbacks: &[(&str, &[String])], channels: &[ChannelRow]) -> String {
    let models: Vec<_> = models
        .iter()
        .map(|m| {
            json!([
                m.id,
                m.provider,
                m.context,
                m.input_price.0,
                m.output_price.0,
                m.cached_input_price.map(|p| p.0),
                m.cache_write_price.map(|p| p.0),
                m.rules.cache_write_1h.map(|p| p.0),
                m.rules.explicit_cached_input.map(|p| p.0),
                serde_json::to_value(&m.rules.tiers).unwrap_or_default(),
                m.enabled
            ])
        })
        .collect();
    let channels: Vec<_> = channels
        .iter()
        .map(|c| {
            let l = &c.limits;
            json!([
                c.name,
                c.kind,
                c.base_url,
                c.api_key,
                c.api_key_env,
                c.models,
                c.model_map,
                c.priority,
                c.weight,
                c.enabled,
                [
                    l.connect_timeout_ms,
                    l.first_token_timeout_ms,
                    l.idle_timeout_ms,
                    l.total_timeout_ms,
                    l.max_concurrency
                ]
            ])
        })
        .collect();
    let all = json!({"models": models, "fallbacks": fallbacks, "channels": channels});
    hex::encode(Sha256::digest(all.to_string().as_bytes()))
}

fn model_row(model: &ModelConfig) -> Result<ModelRow, StartError> {
    let prices = model
        .prices()
        .map_err(|e| StartError::Config(format!("model {}: {e}", model.id)))?;
    Ok(ModelRow {
        id: model.id.clone(),
        provider: model.provider.clone(),
        context: model.context,
        input_price: prices.input,
        output_price: prices.output,
        cached_input_price: prices.cache_read,
        cache_write_price: prices.cache_write,
        rules: prices.rules,
        enabled: true,
        created: 0,
    })
}

fn channel_row(channel: &ChannelConfig) -> ChannelRow {
    ChannelRow {
        id: 0,
        name: channel.name.clone(),
        kind: channel.kind.clone(),
        base_url: channel.base_url.clone(),
        api_key: crate::catalog::keys::join_keys(&channel.keys()),
        api_key_env: channel.api_key_env.clone(),
        models: channel.models.clone(),
        model_map: channel.model_map.clone(),
        priority: channel.priority,
        weight: channel.weight,
        enabled: channel.enabled,
        limits: channel.limits(),
        responses_native: channel.responses_native,
    }
}
