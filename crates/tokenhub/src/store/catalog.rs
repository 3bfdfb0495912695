//! Models (with prices) and channels (upstream accounts).
//!
//! Two ways in: `seed_*` inserts only what is missing (built-in catalogue and presets, so
//! later edits survive restarts); `upsert_*` overwrites (the operator's TOML file, whose
//! entries are declared to win at every start).

use std::collections::BTreeMap;

use sqlx::Row;

use super::changes::{Change, record};
use super::{Store, StoreResult, now_ms};
use crate::ledger::money::Nanos;
use crate::ledger::price_tiers::PriceRules;

/// A model row the gateway cannot read, and why (`Store::models_and_unreadable`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnreadableModel {
    pub model: String,
    pub error: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelRow {
    pub id: String,
    pub provider: String,
    pub context: i64,
    pub input_price: Nanos,
    pub output_price: Nanos,
    pub cached_input_price: Option<Nanos>,
    /// Price of prompt tokens written to the provider's cache; `None` = the input price.
    pub cache_write_price: Option<Nanos>,
    /// 1-hour cache writes, explicit cache hits and price tiers (migration 0010).
    pub rules: PriceRules,
    pub enabled: bool,
    /// Unix seconds; set by the store on insert (ignored when writing).
    pub created: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelRow {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub base_url: String,
    pub api_key: Option<String>,
    pub api_key_env: Option<String>,
    pub models: Vec<String>,
    pub model_map: BTreeMap<String, String>,
    pub priority: i64,
    pub weight: i64,
    pub enabled: bool,
    pub limits: ChannelLimits,
    /// Serves OpenAI's Responses API itself: `/v1/responses` is passed through (0021).
    pub responses_native: bool,
}

/// Per-channel overrides (migration 0006). `None` = the global default (timeouts, in
/// milliseconds) or no cap (`max_concurrency`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelLimits {
    pub connect_timeout_ms: Option<i64>,
    pub first_token_timeout_ms: Option<i64>,
    pub idle_timeout_ms: Option<i64>,
    pub total_timeout_ms: Option<i64>,
    pub max_concurrency: Option<i64>,
}

/// The columns of `ChannelLimits`, in bind order after the channel's other columns.
pub(super) const LIMIT_COLUMNS: &str = "connect_timeout_ms, first_token_timeout_ms, idle_timeout_ms, total_timeout_ms, max_concurrency";

/// The capability columns of a channel, bound after its limits (`ChannelRow::bind_capabilities`).
pub(super) const CAPABILITY_COLUMNS: &str = "responses_native";

/// The columns of `PriceRules`, in bind order after a model's other columns.
pub(super) const RULE_COLUMNS: &str =
    "cache_write_1h_price_nano, explicit_cached_price_nano, price_tiers";

impl ModelRow {
    /// Binds `id, provider, context, input_price_nano, output_price_nano,
    /// cached_input_price_nano, cache_write_price_nano, enabled`, the order every
    /// `INSERT INTO models` lists them in.
    pub(super) fn bind_fields<'q>(
        &'q self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        query
            .bind(&self.id)
            .bind(&self.provider)
            .bind(self.context)
            .bind(self.input_price.0)
            .bind(self.output_price.0)
            .bind(self.cached_input_price.map(|p| p.0))
            .bind(self.cache_write_price.map(|p| p.0))
            .bind(i64::from(self.enabled))
    }

    pub(super) fn bind_rules<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        query
            .bind(self.rules.cache_write_1h.map(|p| p.0))
            .bind(self.rules.explicit_cached_input.map(|p| p.0))
            .bind(self.rules.tiers_json())
    }

    fn read(row: &sqlx::any::AnyRow) -> Result<ModelRow, sqlx::Error> {
        Ok(ModelRow {
            id: row.try_get("id")?,
            provider: row.try_get("provider")?,
            context: row.try_get("context")?,
            input_price: Nanos(row.try_get("input_price_nano")?),
            output_price: Nanos(row.try_get("output_price_nano")?),
            cached_input_price: row
                .try_get::<Option<i64>, _>("cached_input_price_nano")?
                .map(Nanos),
            cache_write_price: row
                .try_get::<Option<i64>, _>("cache_write_price_nano")?
                .map(Nanos),
            rules: ModelRow::read_rules(row)?,
            enabled: row.try_get::<i64, _>("enabled")? != 0,
            created: row.try_get::<i64, _>("created_at")? / 1000,
        })
    }

    /// A model's rules, refused if the row breaks what every way in checks (the
    /// management API, the config file): it was written straight into the database.
    fn read_rules(row: &sqlx::any::AnyRow) -> Result<PriceRules, sqlx::Error> {
        let malformed = |why: String| sqlx::Error::Decode(why.into());
        let tiers: Option<String> = row.try_get("price_tiers")?;
        let rules = PriceRules {
            cache_write_1h: row
                .try_get::<Option<i64>, _>("cache_write_1h_price_nano")?
                .map(Nanos),
            explicit_cached_input: row
                .try_get::<Option<i64>, _>("explicit_cached_price_nano")?
                .map(Nanos),
            tiers: PriceRules::tiers_from_json(tiers.as_deref())
                .map_err(|why| malformed(format!("price_tiers: {why}")))?,
        };
        crate::ledger::price_tiers::validate(&rules.tiers)
            .map_err(|why| malformed(format!("price_tiers: {why}")))?;
        if rules.any_negative() {
            return Err(malformed("a cache price is negative".into()));
        }
        Ok(rules)
    }
}

impl ChannelRow {
    /// Binds `name` … `enabled`, the first ten columns of every channel write, in order,
    /// with `sealed_key` (`Store::seal_channel_key`) in place of the plain key.
    pub(super) fn bind_fields<'q>(
        &'q self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
        sealed_key: Option<String>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        query
            .bind(&self.name)
            .bind(&self.kind)
            .bind(&self.base_url)
            .bind(sealed_key)
            .bind(self.api_key_env.as_deref())
            .bind(serde_json::Value::from(self.models.clone()).to_string())
            .bind(serde_json::to_string(&self.model_map).unwrap_or_else(|_| "{}".into()))
            .bind(self.priority)
            .bind(self.weight)
            .bind(i64::from(self.enabled))
    }
}

impl ChannelRow {
    /// Binds `CAPABILITY_COLUMNS`, after the limits.
    pub(super) fn bind_capabilities<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        query.bind(i64::from(self.responses_native))
    }
}

impl ChannelLimits {
    pub(super) fn bind<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        query
            .bind(self.connect_timeout_ms)
            .bind(self.first_token_timeout_ms)
            .bind(self.idle_timeout_ms)
            .bind(self.total_timeout_ms)
            .bind(self.max_concurrency)
    }

    fn read(row: &sqlx::any::AnyRow) -> Result<ChannelLimits, sqlx::Error> {
        Ok(ChannelLimits {
            connect_timeout_ms: row.try_get("connect_timeout_ms")?,
            first_token_timeout_ms: row.try_get("first_token_timeout_ms")?,
            idle_timeout_ms: row.try_get("idle_timeout_ms")?,
            total_timeout_ms: row.try_get("total_timeout_ms")?,
            max_concurrency: row.try_get("max_concurrency")?,
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum OnConflict {
    Keep,
    Overwrite,
}

impl Store {
    pub async fn seed_model(&self, model: &ModelRow) -> StoreResult<()> {
        self.write_model(model, OnConflict::Keep).await
    }

    pub async fn upsert_model(&self, model: &ModelRow) -> StoreResult<()> {
        self.write_model(model, OnConflict::Overwrite).await
    }

    pub async fn seed_channel(&self, channel: &ChannelRow) -> StoreResult<()> {
        self.write_channel(channel, OnConflict::Keep).await
    }

    pub async fn upsert_channel(&self, channel: &ChannelRow) -> StoreResult<()> {
        self.write_channel(channel, OnConflict::Overwrite).await
    }

    async fn write_model(&self, model: &ModelRow, on_conflict: OnConflict) -> StoreResult<()> {
        let conflict = match on_conflict {
            OnConflict::Keep => "DO NOTHING",
            OnConflict::Overwrite => {
                "DO UPDATE SET provider = excluded.provider, context = excluded.context, \
                 input_price_nano = excluded.input_price_nano, output_price_nano = excluded.output_price_nano, \
                 cached_input_price_nano = excluded.cached_input_price_nano, \
                 cache_write_price_nano = excluded.cache_write_price_nano, enabled = excluded.enabled, \
                 cache_write_1h_price_nano = excluded.cache_write_1h_price_nano, \
                 explicit_cached_price_nano = excluded.explicit_cached_price_nano, \
                 price_tiers = excluded.price_tiers, unpriced = 0"
            }
        };
        let sql = format!(
            "INSERT INTO models (id, provider, context, input_price_nano, output_price_nano, \
             cached_input_price_nano, cache_write_price_nano, enabled, created_at, {RULE_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (id) {conflict}"
        );
        let mut tx = self.begin_write().await?;
        let query = model.bind_fields(sqlx::query(&sql)).bind(now_ms());
        let written = model.bind_rules(query).execute(&mut *tx).await?;
        // A seed that found its row changed nothing: running gateways need not hear of it.
        if written.rows_affected() > 0 {
            record(&mut tx, Change::Catalog).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn write_channel(
        &self,
        channel: &ChannelRow,
        on_conflict: OnConflict,
    ) -> StoreResult<()> {
        let conflict = match on_conflict {
            OnConflict::Keep => "DO NOTHING",
            OnConflict::Overwrite => {
                "DO UPDATE SET kind = excluded.kind, base_url = excluded.base_url, api_key = excluded.api_key, \
                 api_key_env = excluded.api_key_env, models = excluded.models, model_map = excluded.model_map, \
                 priority = excluded.priority, weight = excluded.weight, enabled = excluded.enabled, \
                 connect_timeout_ms = excluded.connect_timeout_ms, \
                 first_token_timeout_ms = excluded.first_token_timeout_ms, \
                 idle_timeout_ms = excluded.idle_timeout_ms, total_timeout_ms = excluded.total_timeout_ms, \
                 max_concurrency = excluded.max_concurrency, responses_native = excluded.responses_native"
            }
        };
        let sql = format!(
            "INSERT INTO channels (name, kind, base_url, api_key, api_key_env, models, model_map, priority, \
             weight, enabled, created_at, {LIMIT_COLUMNS}, {CAPABILITY_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
             ON CONFLICT (name) {conflict}"
        );
        let mut tx = self.begin_write().await?;
        let sealed_key = self.seal_channel_key(channel.api_key.as_deref());
        let query = channel
            .bind_fields(sqlx::query(&sql), sealed_key)
            .bind(now_ms());
        let query = channel.limits.bind(query);
        let written = channel.bind_capabilities(query).execute(&mut *tx).await?;
        if written.rows_affected() > 0 {
            record(&mut tx, Change::Catalog).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The models whose rows read (see `models_and_unreadable`).
    pub async fn all_models(&self) -> StoreResult<Vec<ModelRow>> {
        Ok(self.models_and_unreadable().await?.0)
    }

    /// Every model row: those that read, and those the gateway cannot read with why.
    /// One row the database holds but the gateway cannot read (a malformed `price_tiers`
    /// written straight into it) must not take the whole catalogue down: start-up would
    /// fail, and running instances would keep their old snapshot through every later
    /// change. It is left out, logged, counted by `tokenhub_models_unreadable`, and
    /// listed by the management API, which can replace or delete it.
    pub async fn models_and_unreadable(
        &self,
    ) -> StoreResult<(Vec<ModelRow>, Vec<UnreadableModel>)> {
        let rows = sqlx::query(
            &format!(
                "SELECT id, provider, context, input_price_nano, output_price_nano, cached_input_price_nano, \
                 cache_write_price_nano, enabled, created_at, {RULE_COLUMNS} FROM models ORDER BY id"
            ),
        )
        .fetch_all(&self.pool)
        .await?;
        let mut models = Vec::with_capacity(rows.len());
        let mut unreadable = Vec::new();
        for row in &rows {
            match ModelRow::read(row) {
                Ok(model) => models.push(model),
                Err(error) => {
                    let model: String = row.try_get("id").unwrap_or_default();
                    tracing::error!(%model, %error, "model row unreadable: the model is left out of the catalogue until its row is fixed");
                    unreadable.push(UnreadableModel {
                        model,
                        error: error.to_string(),
                    });
                }
            }
        }
        metrics::gauge!("tokenhub_models_unreadable").set(unreadable.len() as f64);
        Ok((models, unreadable))
    }

    pub async fn all_channels(&self) -> StoreResult<Vec<ChannelRow>> {
        let sql = format!(
            "SELECT id, name, kind, base_url, api_key, api_key_env, models, model_map, priority, weight, enabled, \
             {LIMIT_COLUMNS}, {CAPABILITY_COLUMNS} FROM channels ORDER BY id"
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                let models: String = row.try_get("models")?;
                let model_map: String = row.try_get("model_map")?;
                let name: String = row.try_get("name")?;
                Ok(ChannelRow {
                    id: row.try_get("id")?,
                    api_key: self.open_channel_key(&name, row.try_get("api_key")?)?,
                    name,
                    kind: row.try_get("kind")?,
                    base_url: row.try_get("base_url")?,
                    api_key_env: row.try_get("api_key_env")?,
                    models: serde_json::from_str(&models).unwrap_or_default(),
                    model_map: serde_json::from_str(&model_map).unwrap_or_default(),
                    priority: row.try_get("priority")?,
                    weight: row.try_get("weight")?,
                    enabled: row.try_get::<i64, _>("enabled")? != 0,
                    limits: ChannelLimits::read(row)?,
                    responses_native: row.try_get::<i64, _>("responses_native")? != 0,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::temp_store;

    fn model(id: &str, price: i64) -> ModelRow {
        ModelRow {
            id: id.into(),
            provider: "P".into(),
            context: 1000,
            input_price: Nanos(price),
            output_price: Nanos(price),
            cached_input_price: None,
            cache_write_price: None,
            rules: Default::default(),
            enabled: true,
            created: 0,
        }
    }

    #[tokio::test]
    async fn seeding_keeps_edits_and_upserting_overwrites() {
        let (store, _dir) = temp_store().await;
        store.seed_model(&model("m", 1)).await.unwrap();
        store.seed_model(&model("m", 2)).await.unwrap();
        assert_eq!(store.all_models().await.unwrap()[0].input_price, Nanos(1));
        store.upsert_model(&model("m", 3)).await.unwrap();
        let stored = store.all_models().await.unwrap().remove(0);
        assert_eq!(stored.input_price, Nanos(3));
        assert!(stored.created > 1_700_000_000);
    }

    #[tokio::test]
    async fn cache_prices_round_trip_and_stay_unset_when_unset() {
        let (store, _dir) = temp_store().await;
        let cached = ModelRow {
            cached_input_price: Some(Nanos(300)),
            cache_write_price: Some(Nanos(3_750)),
            ..model("claude", 3_000)
        };
        store.upsert_model(&cached).await.unwrap();
        store.upsert_model(&model("plain", 1)).await.unwrap();
        let stored = store.all_models().await.unwrap();
        assert_eq!(
            stored[0],
            ModelRow {
                created: stored[0].created,
                ..cached
            }
        );
        assert_eq!(
            (stored[1].cached_input_price, stored[1].cache_write_price),
            (None, None)
        );
    }

    /// A row written straight into the database with tiers the gateway cannot read is
    /// left out; the other models are still read.
    #[tokio::test]
    async fn an_unreadable_model_row_is_skipped_and_the_others_are_read() {
        let (store, _dir) = temp_store().await;
        for id in ["bad-json", "fine", "overlapping"] {
            store.upsert_model(&model(id, 1)).await.unwrap();
        }
        let overlapping = r#"[{"name":"a","service_tier":"flex","input_usd_per_mtok":"1","output_usd_per_mtok":"1"},
            {"name":"b","service_tier":"flex","input_usd_per_mtok":"1","output_usd_per_mtok":"1"}]"#;
        for (id, tiers) in [("bad-json", "{not json"), ("overlapping", overlapping)] {
            sqlx::query("UPDATE models SET price_tiers = $1 WHERE id = $2")
                .bind(tiers)
                .bind(id)
                .execute(&store.pool)
                .await
                .unwrap();
        }
        let ids: Vec<String> = store
            .all_models()
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(ids, ["fine"]);
    }

    /// The data `UPDATE`s of a migration file (comments may hold a `;`: they go first).
    fn data_updates(migration: &str) -> Vec<String> {
        let without_comments: Vec<&str> = migration
            .lines()
            .filter(|line| !line.trim_start().starts_with("--"))
            .collect();
        without_comments
            .join("\n")
            .split(';')
            .filter(|statement| statement.trim_start().starts_with("UPDATE"))
            .map(str::to_string)
            .collect()
    }

    /// Migration 0005 moved rows still holding the old single-price seed to the vendors'
    /// prices, and 0016 moves those to the seed page's: a row nobody edited ends at the
    /// built-in prices, and an edited row is left alone.
    #[tokio::test]
    async fn migrations_0005_and_0016_move_untouched_seeds_to_the_built_in_prices() {
        const OLD_SEED: &[(&str, i64)] = &[
            ("deepseek-chat", 270_000_000),
            ("deepseek-v3.2", 270_000_000),
            ("deepseek-r1", 550_000_000),
            ("qwen-plus", 110_000_000),
            ("qwen-max", 280_000_000),
            ("glm-5", 140_000_000),
            ("doubao-pro", 140_000_000),
            ("doubao-lite", 10_000_000),
            ("kimi-k2.5", 140_000_000),
            ("gpt-4o", 2_500_000_000),
            ("claude-sonnet-4", 3_000_000_000),
        ];
        let (store, _dir) = temp_store().await;
        for (id, old) in OLD_SEED {
            store.upsert_model(&model(id, *old)).await.unwrap();
        }
        let edited = ModelRow {
            output_price: Nanos(9),
            ..model("edited", 1)
        };
        store.upsert_model(&edited).await.unwrap();
        let migration = include_str!("../../migrations/sqlite/0005_cache_write_price.sql");
        let seed_page = include_str!("../../migrations/sqlite/0016_seed_page_prices.sql");
        assert_eq!(data_updates(migration).len(), OLD_SEED.len());
        for update in data_updates(migration)
            .iter()
            .chain(&data_updates(seed_page))
        {
            sqlx::query(update).execute(&store.pool).await.unwrap();
        }
        let stored = store.all_models().await.unwrap();
        for preset in crate::providers::presets::builtin_models() {
            let Some(row) = stored.iter().find(|m| m.id == preset.id) else {
                continue; // free models were seeded right the first time
            };
            let prices = |m: &ModelRow| {
                (
                    m.input_price,
                    m.output_price,
                    m.cached_input_price,
                    m.cache_write_price,
                )
            };
            // DashScope's cache prices came with migration 0010, which leaves existing rows
            // alone: a row fixed by 0005 has none (hits billed at the input price).
            let expected = if preset.id.starts_with("qwen-") {
                ModelRow {
                    cached_input_price: None,
                    cache_write_price: None,
                    ..preset.clone()
                }
            } else {
                preset.clone()
            };
            assert_eq!(prices(row), prices(&expected), "{}", preset.id);
        }
        let untouched = stored.iter().find(|m| m.id == "edited").unwrap();
        assert_eq!(untouched.output_price, Nanos(9));
        // PostgreSQL runs the same data fix.
        let postgres = include_str!("../../migrations/postgres/0005_cache_write_price.sql");
        let updates_of = |sql: &str| -> Vec<String> {
            sql.lines()
                .skip_while(|line| !line.starts_with("UPDATE"))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(updates_of(postgres), updates_of(migration));
        let postgres = include_str!("../../migrations/postgres/0016_seed_page_prices.sql");
        assert_eq!(data_updates(postgres), data_updates(seed_page));
    }

    #[tokio::test]
    async fn channels_round_trip() {
        let (store, _dir) = temp_store().await;
        let channel = ChannelRow {
            id: 0,
            name: "c".into(),
            kind: "openai".into(),
            base_url: "http://127.0.0.1:1".into(),
            api_key: Some("secret".into()),
            api_key_env: None,
            models: vec!["a".into()],
            model_map: BTreeMap::from([("a".to_string(), "b".to_string())]),
            priority: 5,
            weight: 2,
            enabled: true,
            limits: ChannelLimits {
                first_token_timeout_ms: Some(1500),
                max_concurrency: Some(4),
                ..ChannelLimits::default()
            },
            responses_native: false,
        };
        store.upsert_channel(&channel).await.unwrap();
        let loaded = store.all_channels().await.unwrap().remove(0);
        assert_eq!(ChannelRow { id: 0, ..loaded }, channel);
    }
}
