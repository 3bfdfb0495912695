//! Channel and model editing for the management API, by id, with conflicts reported
//! instead of overwritten (unlike the seed/upsert paths of `catalog.rs`).

use std::collections::HashSet;

use sqlx::Row;

use super::catalog::{CAPABILITY_COLUMNS, LIMIT_COLUMNS, RULE_COLUMNS};
use super::changes::{Change, record};
use super::{ChannelRow, ModelRow, Store, StoreError, StoreResult, now_ms};

fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

fn conflict_or(error: sqlx::Error, what: String) -> StoreError {
    if is_unique_violation(&error) {
        StoreError::Conflict(what)
    } else {
        StoreError::Database(error)
    }
}

impl Store {
    pub async fn channel_by_id(&self, id: i64) -> StoreResult<Option<ChannelRow>> {
        Ok(self.all_channels().await?.into_iter().find(|c| c.id == id))
    }

    /// Inserts a new channel; a taken name is a conflict.
    pub async fn create_channel(&self, channel: &ChannelRow) -> StoreResult<ChannelRow> {
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "INSERT INTO channels (name, kind, base_url, api_key, api_key_env, models, model_map, priority, \
             weight, enabled, created_at, {LIMIT_COLUMNS}, {CAPABILITY_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING id"
        );
        let sealed_key = self.seal_channel_key(channel.api_key.as_deref());
        let query = channel
            .bind_fields(sqlx::query(&sql), sealed_key)
            .bind(now_ms());
        let query = channel.limits.bind(query);
        let id: i64 = channel
            .bind_capabilities(query)
            .fetch_one(&mut *tx)
            .await
            .and_then(|row| row.try_get("id"))
            .map_err(|e| conflict_or(e, format!("a channel named '{}' exists", channel.name)))?;
        record(&mut tx, Change::Catalog).await?;
        tx.commit().await?;
        self.channel_by_id(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("channel {id}")))
    }

    /// Overwrites every field of channel `channel.id`.
    pub async fn update_channel(&self, channel: &ChannelRow) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let query = sqlx::query(
            "UPDATE channels SET name = $1, kind = $2, base_url = $3, api_key = $4, api_key_env = $5, models = $6, \
             model_map = $7, priority = $8, weight = $9, enabled = $10, connect_timeout_ms = $12, \
             first_token_timeout_ms = $13, idle_timeout_ms = $14, total_timeout_ms = $15, max_concurrency = $16, \
             responses_native = $17 WHERE id = $11",
        );
        let sealed_key = self.seal_channel_key(channel.api_key.as_deref());
        let query = channel.bind_fields(query, sealed_key).bind(channel.id);
        let query = channel.limits.bind(query);
        let updated = channel
            .bind_capabilities(query)
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict_or(e, format!("a channel named '{}' exists", channel.name)))?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "no channel with id {}",
                channel.id
            )));
        }
        record(&mut tx, Change::Catalog).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes a channel. Usage records keep its id as history.
    pub async fn delete_channel(&self, id: i64) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query("DELETE FROM channels WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("no channel with id {id}")));
        }
        record(&mut tx, Change::Catalog).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn model_by_id(&self, id: &str) -> StoreResult<Option<ModelRow>> {
        Ok(self.all_models().await?.into_iter().find(|m| m.id == id))
    }

    /// Ids of models still waiting for a price (see migration 0002).
    pub async fn unpriced_model_ids(&self) -> StoreResult<HashSet<String>> {
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM models WHERE unpriced = 1")
            .fetch_all(&self.pool)
            .await?;
        Ok(ids.into_iter().collect())
    }

    /// Inserts models in one transaction; any id already present fails the whole batch.
    /// `unpriced` marks rows whose prices the operator has not set yet.
    pub async fn create_models(&self, models: &[(ModelRow, bool)]) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "INSERT INTO models (id, provider, context, input_price_nano, output_price_nano, \
             cached_input_price_nano, cache_write_price_nano, enabled, created_at, unpriced, \
             {RULE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        );
        for (model, unpriced) in models {
            let query = model
                .bind_fields(sqlx::query(&sql))
                .bind(now_ms())
                .bind(i64::from(*unpriced));
            model
                .bind_rules(query)
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict_or(e, format!("a model with id '{}' exists", model.id)))?;
        }
        record(&mut tx, Change::Catalog).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Overwrites a model's fields; writing it always counts as pricing it.
    pub async fn update_model(&self, model: &ModelRow) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let query = sqlx::query(
            "UPDATE models SET provider = $1, context = $2, input_price_nano = $3, output_price_nano = $4, \
             cached_input_price_nano = $5, cache_write_price_nano = $6, enabled = $7, unpriced = 0, \
             cache_write_1h_price_nano = $9, explicit_cached_price_nano = $10, price_tiers = $11 \
             WHERE id = $8",
        )
        .bind(&model.provider)
        .bind(model.context)
        .bind(model.input_price.0)
        .bind(model.output_price.0)
        .bind(model.cached_input_price.map(|p| p.0))
        .bind(model.cache_write_price.map(|p| p.0))
        .bind(i64::from(model.enabled))
        .bind(&model.id);
        let updated = model.bind_rules(query).execute(&mut *tx).await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("no model '{}'", model.id)));
        }
        record(&mut tx, Change::Catalog).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_model(&self, id: &str) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query("DELETE FROM models WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("no model '{id}'")));
        }
        record(&mut tx, Change::Catalog).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether each id is unpriced, for listings.
    pub async fn model_unpriced_flags(&self) -> StoreResult<Vec<(String, bool)>> {
        let rows = sqlx::query("SELECT id, unpriced FROM models ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("id")?, row.try_get::<i64, _>("unpriced")? != 0)))
            .collect()
    }
}
