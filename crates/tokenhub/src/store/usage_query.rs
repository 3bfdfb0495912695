//! Usage listings and aggregates for the management API. Filters are bound parameters of
//! `sql::Sql`; only fixed column expressions chosen from enums are pushed as SQL.

use std::collections::BTreeMap;

use sqlx::Row;

use super::sql::Sql;

use super::usage::{RECORD_COLUMNS, record_from_row};
use super::{Store, StoreResult, UsageRecord};
use crate::ledger::money::Nanos;

/// Which records a query covers. Every field narrows; `None` means any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsageFilter {
    pub user_id: Option<i64>,
    pub key_id: Option<i64>,
    pub model: Option<String>,
    pub channel_id: Option<i64>,
    pub status: Option<StatusFilter>,
    /// Unix ms, inclusive.
    pub from: Option<i64>,
    /// Unix ms, exclusive.
    pub to: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusFilter {
    /// HTTP status below 400.
    Ok,
    /// HTTP status 400 or above.
    Error,
    Code(u16),
}

/// What aggregates are grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupBy {
    /// UTC day (the key is `YYYY-MM-DD`).
    Day,
    Model,
    User,
    Key,
}

impl GroupBy {
    fn expression(self) -> &'static str {
        match self {
            GroupBy::Day => "created_at / 86400000",
            GroupBy::Model => "model",
            GroupBy::User => "user_id",
            GroupBy::Key => "key_id",
        }
    }
}

/// Totals of one group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsageAggregate {
    pub group: String,
    pub requests: i64,
    pub errors: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost: Nanos,
    pub latency_p50_ms: Option<i64>,
    pub latency_p95_ms: Option<i64>,
}

/// Latency percentiles are computed in Rust over at most this many of the newest rows.
pub const LATENCY_SAMPLE_ROWS: i64 = 50_000;

fn push_filters(builder: &mut Sql<'_>, filter: &UsageFilter) {
    builder.push(" WHERE 1 = 1");
    if let Some(user_id) = filter.user_id {
        builder.push(" AND user_id = ").bind(user_id);
    }
    if let Some(key_id) = filter.key_id {
        builder.push(" AND key_id = ").bind(key_id);
    }
    if let Some(model) = &filter.model {
        builder.push(" AND model = ").bind(model.clone());
    }
    if let Some(channel_id) = filter.channel_id {
        builder.push(" AND channel_id = ").bind(channel_id);
    }
    match filter.status {
        Some(StatusFilter::Ok) => {
            builder.push(" AND status < 400");
        }
        Some(StatusFilter::Error) => {
            builder.push(" AND status >= 400");
        }
        Some(StatusFilter::Code(code)) => {
            builder.push(" AND status = ").bind(i64::from(code));
        }
        None => {}
    }
    if let Some(from) = filter.from {
        builder.push(" AND created_at >= ").bind(from);
    }
    if let Some(to) = filter.to {
        builder.push(" AND created_at < ").bind(to);
    }
}

fn group_key(row: &sqlx::any::AnyRow, group: GroupBy) -> StoreResult<String> {
    Ok(match group {
        GroupBy::Model => row.try_get("k")?,
        GroupBy::User | GroupBy::Key => row.try_get::<i64, _>("k")?.to_string(),
        GroupBy::Day => day_string(row.try_get::<i64, _>("k")?),
    })
}

fn day_string(days_since_epoch: i64) -> String {
    let date = time::OffsetDateTime::from_unix_timestamp(days_since_epoch * 86_400)
        .map(|t| t.date())
        .unwrap_or(time::Date::MIN);
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// The value at quantile `q` of sorted values (nearest rank).
fn percentile(sorted: &[i64], q: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

impl Store {
    /// One page of records, newest first, with the number matching the filter.
    pub async fn usage_page(
        &self,
        filter: &UsageFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<(i64, UsageRecord)>, i64)> {
        let mut count = Sql::new("SELECT COUNT(*) FROM usage_records");
        push_filters(&mut count, filter);
        let total = count.fetch_i64(&self.pool).await?;
        let mut select = Sql::new(format!("SELECT id, {RECORD_COLUMNS} FROM usage_records"));
        push_filters(&mut select, filter);
        select
            .push(" ORDER BY id DESC LIMIT ")
            .bind(limit)
            .push(" OFFSET ")
            .bind(offset);
        let rows = select.fetch_all(&self.pool).await?;
        let records = rows
            .iter()
            .map(|row| Ok((row.try_get("id")?, record_from_row(row)?)))
            .collect::<StoreResult<_>>()?;
        Ok((records, total))
    }

    /// Totals per group (exact over every matching row) with latency percentiles over the
    /// newest `LATENCY_SAMPLE_ROWS` matching rows.
    pub async fn usage_aggregates(
        &self,
        filter: &UsageFilter,
        group: GroupBy,
    ) -> StoreResult<Vec<UsageAggregate>> {
        let expression = group.expression();
        let mut totals = Sql::new(format!(
            "SELECT {expression} AS k, COUNT(*) AS requests, \
             CAST(COALESCE(SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), 0) AS BIGINT) AS errors, \
             CAST(COALESCE(SUM(prompt_tokens), 0) AS BIGINT) AS prompt_tokens, \
             CAST(COALESCE(SUM(completion_tokens), 0) AS BIGINT) AS completion_tokens, \
             CAST(COALESCE(SUM(cost_nano), 0) AS BIGINT) AS cost FROM usage_records"
        ));
        push_filters(&mut totals, filter);
        totals.push(&format!(" GROUP BY {expression} ORDER BY {expression}"));
        let rows = totals.fetch_all(&self.pool).await?;
        let mut groups = BTreeMap::new();
        let mut order = Vec::with_capacity(rows.len());
        for row in &rows {
            let key = group_key(row, group)?;
            order.push(key.clone());
            groups.insert(
                key.clone(),
                UsageAggregate {
                    group: key,
                    requests: row.try_get("requests")?,
                    errors: row.try_get("errors")?,
                    prompt_tokens: row.try_get("prompt_tokens")?,
                    completion_tokens: row.try_get("completion_tokens")?,
                    cost: Nanos(row.try_get("cost")?),
                    latency_p50_ms: None,
                    latency_p95_ms: None,
                },
            );
        }
        let mut sample = Sql::new(format!(
            "SELECT {expression} AS k, latency_ms FROM usage_records"
        ));
        push_filters(&mut sample, filter);
        sample
            .push(" ORDER BY id DESC LIMIT ")
            .bind(LATENCY_SAMPLE_ROWS);
        let mut latencies: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for row in sample.fetch_all(&self.pool).await? {
            latencies
                .entry(group_key(&row, group)?)
                .or_default()
                .push(row.try_get("latency_ms")?);
        }
        for (key, mut values) in latencies {
            values.sort_unstable();
            if let Some(aggregate) = groups.get_mut(&key) {
                aggregate.latency_p50_ms = percentile(&values, 0.50);
                aggregate.latency_p95_ms = percentile(&values, 0.95);
            }
        }
        Ok(order
            .into_iter()
            .filter_map(|key| groups.remove(&key))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let values: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&values, 0.5), Some(50));
        assert_eq!(percentile(&values, 0.95), Some(95));
        assert_eq!(percentile(&[7], 0.95), Some(7));
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(day_string(0), "1970-01-01");
        assert_eq!(day_string(20_000), "2024-10-04");
    }
}
