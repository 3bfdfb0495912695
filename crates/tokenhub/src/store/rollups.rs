//! Usage rollups (migrations 0018, 0022, 0025, 0026 and 0027), written by the ledger
//! writer in the same transaction as the records they count, so Σ rollup cost = Σ record
//! cost exactly: a batch is either committed with its rollups or not at all, and a
//! retried batch found committed earlier (`Written::Earlier`) is not counted again. Four
//! additive tables: per owner and hour (user, key, model, channel, status) for key and
//! billing views; everyone together per hour (model, channel, status) for the admin
//! summaries by day or model, whose cost then follows the number of hours and models,
//! not of users, keys or records; per user and day for summaries by user over whole
//! days; and per key of all time, the list of keys the summary by key reads. And running
//! totals per key (a key's totals up to the end of each day it was used) for summaries
//! by key over whole days: at most two rows per key for any range. (The per key and day
//! table of 0018 was read by no summary after 0025, and 0026 drops it.)

use std::collections::BTreeMap;

use super::usage::{Bind, UsageRecord, statement_chunks, to_i64};
use super::{Backend, Store, StoreResult};
use crate::ledger::money::Nanos;

/// Upper bounds (exclusive, ms) of the latency histogram's buckets; the last bucket holds
/// everything from the last bound on. The histogram is the mergeable sketch latency
/// percentiles are read from: summing buckets merges hours, keys and models exactly.
pub const LATENCY_BOUNDS_MS: [i64; 15] = [
    50, 100, 150, 250, 400, 600, 1000, 1500, 2500, 4000, 6000, 10000, 15000, 25000, 60000,
];
pub const LATENCY_BUCKETS: usize = LATENCY_BOUNDS_MS.len() + 1;

/// The summed columns of every rollup table, in binding order.
pub(super) const SUM_COLUMNS: [&str; 9] = [
    "requests",
    "errors",
    "prompt_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "explicit_cached_tokens",
    "completion_tokens",
    "cost_nano",
];

/// The rollup tables a batch adds its rows to (`Table`).
const ADDITIVE_TABLES: usize = 4;

/// How many rollup tables the writer keeps (`rollup_table_costs` returns one sum each):
/// the additive ones and the running totals per key.
pub const ROLLUP_TABLES: usize = ADDITIVE_TABLES + 1;

const RUNNING_TABLE: &str = "usage_rollups_key_running";

pub(super) const HOUR_MS: i64 = 3_600_000;
pub(super) const DAY_MS: i64 = 24 * HOUR_MS;

pub(super) fn latency_column(bucket: usize) -> String {
    format!("latency_{bucket:02}")
}

/// The bucket of a latency.
pub fn latency_bucket(latency_ms: i64) -> usize {
    LATENCY_BOUNDS_MS.partition_point(|bound| *bound <= latency_ms)
}

/// `SUM(CASE …)` counting the records of one bucket: the histogram computed from raw
/// records (the backfill of migration 0018 spells out the same conditions).
pub(super) fn latency_bucket_count(bucket: usize) -> String {
    let lower = bucket
        .checked_sub(1)
        .map(|b| format!("latency_ms >= {}", LATENCY_BOUNDS_MS[b]));
    let upper = LATENCY_BOUNDS_MS
        .get(bucket)
        .map(|bound| format!("latency_ms < {bound}"));
    let condition: Vec<String> = lower.into_iter().chain(upper).collect();
    format!(
        "SUM(CASE WHEN {} THEN 1 ELSE 0 END)",
        condition.join(" AND ")
    )
}

/// The latency at quantile `q` read from a histogram: the upper bound of the bucket that
/// holds the nearest-rank value (the last bound for the open-ended bucket).
pub fn histogram_percentile(buckets: &[i64; LATENCY_BUCKETS], q: f64) -> Option<i64> {
    let total: i64 = buckets.iter().sum();
    if total <= 0 {
        return None;
    }
    let rank = ((q * total as f64).ceil() as i64).clamp(1, total);
    let mut seen = 0;
    for (bucket, count) in buckets.iter().enumerate() {
        seen += count;
        if seen >= rank {
            let last = LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.len() - 1];
            return Some(LATENCY_BOUNDS_MS.get(bucket).copied().unwrap_or(last));
        }
    }
    None
}

/// The start of the UTC hour holding `ms`.
pub(super) fn hour_of(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS) * HOUR_MS
}

/// What one rollup row adds up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Totals {
    sums: [i64; SUM_COLUMNS.len()],
    latency: [i64; LATENCY_BUCKETS],
}

impl Totals {
    fn add(&mut self, record: &UsageRecord) {
        let values = [
            1,
            i64::from(record.status >= 400),
            to_i64(record.prompt_tokens),
            to_i64(record.cached_tokens),
            to_i64(record.cache_write_tokens),
            to_i64(record.cache_write_1h_tokens),
            to_i64(record.explicit_cached_tokens),
            to_i64(record.completion_tokens),
            record.cost.0,
        ];
        for (sum, value) in self.sums.iter_mut().zip(values) {
            *sum = sum.saturating_add(value);
        }
        self.latency[latency_bucket(to_i64(record.latency_ms))] += 1;
    }

    fn merge(&mut self, other: &Totals) {
        let mine = self.sums.iter_mut().chain(self.latency.iter_mut());
        for (value, more) in mine.zip(other.values()) {
            *value = value.saturating_add(more);
        }
    }

    /// Every summed column's value, in `summed_columns` order.
    fn values(&self) -> impl Iterator<Item = i64> + '_ {
        self.sums.iter().chain(&self.latency).copied()
    }
}

/// The summed columns of every rollup table: `SUM_COLUMNS`, then the latency buckets.
fn summed_columns() -> Vec<String> {
    SUM_COLUMNS
        .iter()
        .map(|c| (*c).to_owned())
        .chain((0..LATENCY_BUCKETS).map(latency_column))
        .collect()
}

/// One grouping value of a rollup row, bound in its table's key column order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Dimension {
    Number(i64),
    Text(String),
}

type Rows = BTreeMap<Vec<Dimension>, Totals>;

/// A batch's rollups: per additive table, each in key order (so concurrent writers lock
/// rows in the same order), and the running totals per key.
pub(super) struct BatchRollups {
    tables: [(Table, Rows); ADDITIVE_TABLES],
    running: KeyRunning,
}

/// One statement of a batch's rollups, with the rows it binds.
pub(super) enum Statement<'a> {
    /// Adds rows to an additive table.
    Upsert(Table, Vec<(&'a Vec<Dimension>, &'a Totals)>),
    /// Creates the missing running rows (key, day, user) from the key's previous row.
    Seed(Vec<&'a [i64; 3]>),
    /// Adds totals to one key's running rows over a span of days.
    Add(&'a Span),
}

impl<'a> Statement<'a> {
    pub(super) fn sql(&self, backend: Backend) -> &'static str {
        match self {
            Statement::Upsert(table, rows) => upsert_sql(backend, *table, rows.len()),
            Statement::Seed(rows) => seed_sql(backend, rows.len()),
            Statement::Add(_) => add_sql(backend),
        }
    }

    pub(super) fn bind<B: Bind<'a>>(&self, mut query: B) -> B {
        match self {
            Statement::Upsert(_, rows) => {
                for (key, totals) in rows {
                    query = bind_row(query, key, totals);
                }
            }
            Statement::Seed(rows) => {
                for row in rows {
                    for value in *row {
                        query = query.int(*value);
                    }
                }
            }
            Statement::Add(span) => {
                query = query.int(span.key_id).int(span.from).int(span.to);
                for value in span.totals.values() {
                    query = query.int(value);
                }
            }
        }
        query
    }
}

impl BatchRollups {
    pub fn of(records: &[UsageRecord]) -> BatchRollups {
        let mut tables = Table::ALL.map(|table| (table, Rows::new()));
        for record in records {
            for (table, rows) in &mut tables {
                rows.entry(table.key_of(record)).or_default().add(record);
            }
        }
        BatchRollups {
            tables,
            running: KeyRunning::of(records),
        }
    }

    /// Every statement of the batch's rollups, in the order they run: the additive
    /// tables' upserts (`INSERT_ROW_COUNTS` rows each), then the running totals' seeds
    /// (as many rows each) and one addition per key and span of days.
    pub(super) fn statements(&self) -> Vec<Statement<'_>> {
        let mut statements = Vec::new();
        for (table, rows) in &self.tables {
            let rows: Vec<(&Vec<Dimension>, &Totals)> = rows.iter().collect();
            for chunk in statement_chunks(&rows) {
                statements.push(Statement::Upsert(*table, chunk.to_vec()));
            }
        }
        let seeds: Vec<&[i64; 3]> = self.running.seeds.iter().collect();
        for chunk in statement_chunks(&seeds) {
            statements.push(Statement::Seed(chunk.to_vec()));
        }
        statements.extend(self.running.spans.iter().map(Statement::Add));
        statements
    }
}

fn bind_row<'q, B: Bind<'q>>(mut query: B, key: &'q [Dimension], totals: &Totals) -> B {
    for dimension in key {
        query = match dimension {
            Dimension::Number(n) => query.int(*n),
            Dimension::Text(text) => query.text(text.as_str()),
        };
    }
    for value in totals.values() {
        query = query.int(value);
    }
    query
}

/// What a batch adds to the running totals per key (migration 0025), where a key's row
/// for a day holds every record of the key created before that day ends.
struct KeyRunning {
    /// (key, day, user) of every row the batch adds to, in key and day order; a row the
    /// key lacks is first created from the key's previous row (its totals up to that day).
    seeds: Vec<[i64; 3]>,
    /// Per key, in key order: the batch's totals of a day go to that day's row and every
    /// later row of the key, so each span from one of the batch's days to its next gets
    /// the batch's totals up to that day. Most batches hold one day per key: one span,
    /// from that day on (rows after it exist only when records arrive late).
    spans: Vec<Span>,
}

/// Totals to add to one key's running rows of the days in `[from, to)`.
pub(super) struct Span {
    key_id: i64,
    from: i64,
    to: i64,
    totals: Totals,
}

impl KeyRunning {
    fn of(records: &[UsageRecord]) -> KeyRunning {
        let mut days: BTreeMap<(i64, i64), (i64, Totals)> = BTreeMap::new();
        for record in records {
            let day = record.created_at.div_euclid(DAY_MS) * DAY_MS;
            let (_, totals) = days
                .entry((record.key_id, day))
                .or_insert_with(|| (record.user_id, Totals::default()));
            totals.add(record);
        }
        let seeds = days
            .iter()
            .map(|((key_id, day), (user_id, _))| [*key_id, *day, *user_id])
            .collect();
        let mut spans: Vec<Span> = Vec::new();
        let mut days = days.into_iter().peekable();
        while let Some(((key_id, from), (_, mut totals))) = days.next() {
            let to = match days.peek() {
                Some(((next_key, next_day), _)) if *next_key == key_id => *next_day,
                _ => i64::MAX,
            };
            if let Some(earlier) = spans.last().filter(|span| span.key_id == key_id) {
                totals.merge(&earlier.totals);
            }
            spans.push(Span {
                key_id,
                from,
                to,
                totals,
            });
        }
        KeyRunning { seeds, spans }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Table {
    Owners,
    Global,
    UserDaily,
    KeyTotals,
}

impl Table {
    const ALL: [Table; ADDITIVE_TABLES] = [
        Table::Owners,
        Table::Global,
        Table::UserDaily,
        Table::KeyTotals,
    ];

    fn name(self) -> &'static str {
        match self {
            Table::Owners => "usage_rollups",
            Table::Global => "usage_rollups_global",
            Table::UserDaily => "usage_rollups_user_daily",
            Table::KeyTotals => "usage_rollups_key_totals",
        }
    }

    /// The grouping columns, which are also the unique index the upsert conflicts on.
    fn keys(self) -> &'static [&'static str] {
        match self {
            Table::Owners => &["hour", "user_id", "key_id", "model", "channel_id", "status"],
            Table::Global => &["hour", "model", "channel_id", "status"],
            Table::UserDaily => &["user_id", "day"],
            Table::KeyTotals => &["key_id"],
        }
    }

    /// A record's row in this table, in `keys` order.
    fn key_of(self, record: &UsageRecord) -> Vec<Dimension> {
        use Dimension::{Number, Text};
        let hour = Number(hour_of(record.created_at));
        let channel = Number(record.channel_id.unwrap_or(0));
        let status = Number(i64::from(record.status));
        let model = Text(record.model.clone());
        let day = Number(record.created_at.div_euclid(DAY_MS) * DAY_MS);
        match self {
            Table::Owners => vec![
                hour,
                Number(record.user_id),
                Number(record.key_id),
                model,
                channel,
                status,
            ],
            Table::Global => vec![hour, model, channel, status],
            Table::UserDaily => vec![Number(record.user_id), day],
            Table::KeyTotals => vec![Number(record.key_id)],
        }
    }
}

/// `INSERT … VALUES (…), … ON CONFLICT (keys) DO UPDATE SET column = column + excluded.column`
/// for `rows` rows: additive, so a row written by an earlier batch in the same hour grows.
fn upsert_sql(backend: Backend, table: Table, rows: usize) -> &'static str {
    static SQL: std::sync::LazyLock<Vec<Vec<String>>> = std::sync::LazyLock::new(|| {
        [Backend::Sqlite, Backend::Postgres]
            .into_iter()
            .flat_map(|backend| Table::ALL.map(|table| (backend, table)))
            .map(|(backend, table)| {
                super::usage::INSERT_ROW_COUNTS
                    .iter()
                    .map(|rows| upsert_text(backend, table, *rows))
                    .collect()
            })
            .collect()
    });
    let index = super::usage::INSERT_ROW_COUNTS
        .iter()
        .position(|n| *n == rows)
        .expect("a size from INSERT_ROW_COUNTS");
    let table_index = Table::ALL.iter().position(|t| *t == table).unwrap_or(0);
    let set = usize::from(backend == Backend::Postgres) * Table::ALL.len() + table_index;
    &SQL[set][index]
}

/// `column = stored + new`, saturating at `i64::MAX` as the batch's own sums do: a sum
/// past the column's range would make the database refuse the whole batch (PostgreSQL:
/// "bigint out of range"; SQLite would turn it into a float), and with it records and
/// debits that are fine. Written without an intermediate that could overflow, in SQL both
/// dialects run. Sums are never negative. Money cannot reach the cap in a per-key row
/// (a key's whole spend is bounded by `MAX_AMOUNT`), only a global row could, after
/// $9.2 billion in one hour on one model and channel (found by the ledger simulation,
/// seed 1, step 206, on PostgreSQL). A running row is a per-key row too: its difference
/// of two rows is exact as long as neither saturated.
fn saturating_sum(column: &str, stored: &str, added: &str) -> String {
    format!(
        "{column} = CASE WHEN {stored} > {max} - {added} THEN {max} ELSE {stored} + {added} END",
        max = i64::MAX
    )
}

fn upsert_text(backend: Backend, table: Table, rows: usize) -> String {
    let summed = summed_columns();
    let columns: Vec<String> = table
        .keys()
        .iter()
        .map(|c| (*c).to_owned())
        .chain(summed.iter().cloned())
        .collect();
    let values = super::usage::placeholders(backend, rows, columns.len());
    let updates: Vec<String> = summed
        .iter()
        .map(|c| {
            saturating_sum(
                c,
                &format!("{}.{c}", table.name()),
                &format!("excluded.{c}"),
            )
        })
        .collect();
    format!(
        "INSERT INTO {} ({}) VALUES {} ON CONFLICT ({}) DO UPDATE SET {}",
        table.name(),
        columns.join(", "),
        values,
        table.keys().join(", "),
        updates.join(", ")
    )
}

/// Creates the running rows (key, day, user) a batch adds to that do not exist yet, each
/// from the key's previous row (zero before its first): `INSERT … SELECT … FROM (VALUES
/// …) LEFT JOIN` the key's last row before that day, `ON CONFLICT DO NOTHING`. Rows from
/// one statement do not see each other, and need not: a row seeded before another of the
/// same batch holds the same totals as the row before both.
fn seed_sql(backend: Backend, rows: usize) -> &'static str {
    static SQL: std::sync::LazyLock<[Vec<String>; 2]> = std::sync::LazyLock::new(|| {
        [Backend::Sqlite, Backend::Postgres].map(|backend| {
            super::usage::INSERT_ROW_COUNTS
                .iter()
                .map(|rows| seed_text(backend, *rows))
                .collect()
        })
    });
    let index = super::usage::INSERT_ROW_COUNTS
        .iter()
        .position(|n| *n == rows)
        .expect("a size from INSERT_ROW_COUNTS");
    &SQL[usize::from(backend == Backend::Postgres)][index]
}

fn seed_text(backend: Backend, rows: usize) -> String {
    let summed = summed_columns();
    let previous: Vec<String> = summed
        .iter()
        .map(|c| format!("COALESCE(previous.{c}, 0)"))
        .collect();
    // `WHERE true`: SQLite reads `ON CONFLICT` after a join as the join's constraint
    // otherwise (its documented parsing ambiguity of `INSERT … SELECT` upserts).
    format!(
        "INSERT INTO {RUNNING_TABLE} (key_id, day, user_id, {}) \
         SELECT batch.column1, batch.column2, batch.column3, {} \
         FROM (VALUES {}) AS batch \
         LEFT JOIN {RUNNING_TABLE} AS previous ON previous.key_id = batch.column1 \
         AND previous.day = (SELECT MAX(earlier.day) FROM {RUNNING_TABLE} AS earlier \
         WHERE earlier.key_id = batch.column1 AND earlier.day < batch.column2) \
         WHERE true ON CONFLICT (key_id, day) DO NOTHING",
        summed.join(", "),
        previous.join(", "),
        super::usage::placeholders(backend, rows, 3),
    )
}

/// Adds one span's totals to its key's running rows of the days in `[from, to)`:
/// `UPDATE … FROM (VALUES (key, from, to, totals…))`, each total bound once. One
/// statement per key and span, in key order, so concurrent writers lock a key's rows in
/// the same order.
fn add_sql(backend: Backend) -> &'static str {
    static SQL: std::sync::LazyLock<[String; 2]> =
        std::sync::LazyLock::new(|| [Backend::Sqlite, Backend::Postgres].map(add_text));
    &SQL[usize::from(backend == Backend::Postgres)]
}

fn add_text(backend: Backend) -> String {
    let summed = summed_columns();
    let updates: Vec<String> = summed
        .iter()
        .enumerate()
        .map(|(n, c)| {
            let added = format!("span.column{}", n + 4);
            saturating_sum(c, &format!("{RUNNING_TABLE}.{c}"), &added)
        })
        .collect();
    format!(
        "UPDATE {RUNNING_TABLE} SET {} FROM (VALUES {}) AS span \
         WHERE {RUNNING_TABLE}.key_id = span.column1 AND {RUNNING_TABLE}.day >= span.column2 \
         AND {RUNNING_TABLE}.day < span.column3",
        updates.join(", "),
        super::usage::placeholders(backend, 1, 3 + summed.len()),
    )
}

impl Store {
    /// Σ cost of one user's rollups: Σ cost of every record of theirs ever written
    /// (retention purges records only).
    pub async fn rolled_up_cost(&self, user_id: i64) -> StoreResult<Nanos> {
        let cost: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(cost_nano), 0) AS BIGINT) FROM usage_rollups \
             WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(Nanos(cost))
    }

    /// Σ cost of each rollup table (per owner, global, per user daily, per key, and
    /// the last running row of every key); each equals Σ cost of the records ever written.
    pub async fn rollup_table_costs(&self) -> StoreResult<[Nanos; ROLLUP_TABLES]> {
        let additive = Table::ALL.map(|table| {
            format!(
                "SELECT CAST(COALESCE(SUM(cost_nano), 0) AS BIGINT) FROM {}",
                table.name()
            )
        });
        let running = format!(
            "SELECT CAST(COALESCE(SUM(cost_nano), 0) AS BIGINT) FROM {RUNNING_TABLE} AS last \
             WHERE last.day = (SELECT MAX(later.day) FROM {RUNNING_TABLE} AS later \
             WHERE later.key_id = last.key_id)"
        );
        let mut costs = [Nanos::ZERO; ROLLUP_TABLES];
        for (cost, sql) in costs.iter_mut().zip(additive.iter().chain([&running])) {
            *cost = Nanos(sqlx::query_scalar(sql).fetch_one(&self.pool).await?);
        }
        Ok(costs)
    }

    /// Deletes up to `batch` usage records created before `before` (Unix ms), oldest
    /// first; the number deleted. Rollups are kept: summaries of old hours stay exact.
    /// Small batches keep each transaction short, so the ledger writer is never held up
    /// for long (SQLite has one writer).
    pub async fn purge_usage_records(&self, before: i64, batch: i64) -> StoreResult<u64> {
        let deleted = sqlx::query(
            "DELETE FROM usage_records WHERE id IN \
             (SELECT id FROM usage_records WHERE created_at < $1 ORDER BY created_at LIMIT $2)",
        )
        .bind(before)
        .bind(batch)
        .execute(&self.pool)
        .await?;
        Ok(deleted.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_fall_in_their_buckets_and_percentiles_read_bucket_bounds() {
        assert_eq!(latency_bucket(0), 0);
        assert_eq!(latency_bucket(49), 0);
        assert_eq!(latency_bucket(50), 1);
        assert_eq!(latency_bucket(59_999), 14);
        assert_eq!(latency_bucket(60_000), 15);
        let mut buckets = [0; LATENCY_BUCKETS];
        buckets[0] = 50;
        buckets[6] = 45;
        buckets[15] = 5;
        assert_eq!(histogram_percentile(&buckets, 0.5), Some(50));
        assert_eq!(histogram_percentile(&buckets, 0.95), Some(1000));
        assert_eq!(histogram_percentile(&buckets, 0.99), Some(60_000));
        assert_eq!(histogram_percentile(&[0; LATENCY_BUCKETS], 0.5), None);
    }

    /// The backfill in migration 0018 must bucket old records as the writer buckets new ones.
    #[test]
    fn the_backfill_buckets_latencies_with_the_same_bounds() {
        for backend in ["sqlite", "postgres"] {
            let path = format!(
                "{}/migrations/{backend}/0018_usage_rollups.sql",
                env!("CARGO_MANIFEST_DIR")
            );
            let migration = std::fs::read_to_string(path).unwrap();
            for bucket in 0..LATENCY_BUCKETS {
                assert!(
                    migration.contains(&latency_bucket_count(bucket)),
                    "{backend}: bucket {bucket}"
                );
            }
        }
    }

    /// Every per-user daily row: user, day, then every summed column.
    async fn user_daily_rows(store: &Store) -> Vec<Vec<i64>> {
        use sqlx::Row;
        let summed: Vec<String> = SUM_COLUMNS
            .iter()
            .map(|c| (*c).to_owned())
            .chain((0..LATENCY_BUCKETS).map(latency_column))
            .collect();
        let read = format!(
            "SELECT user_id, day, {} FROM usage_rollups_user_daily ORDER BY user_id, day",
            summed.join(", ")
        );
        let rows = sqlx::query(&read).fetch_all(&store.pool).await.unwrap();
        rows.iter()
            .map(|row| (0..2 + summed.len()).map(|i| row.get(i)).collect())
            .collect()
    }

    /// The per-user daily rows the writer builds are the sums of each user's records of
    /// that day, column for column.
    #[tokio::test]
    async fn the_user_daily_rows_sum_each_users_records_of_the_day() {
        let (store, _dir) = crate::store::test_support::temp_store().await;
        let records: Vec<UsageRecord> = (0..40_i64)
            .map(|n| UsageRecord {
                request_id: format!("r{n}"),
                user_id: n % 3 + 1,
                key_id: n % 5 + 1,
                model: ["a", "b"][(n % 2) as usize].into(),
                prompt_tokens: n as u64,
                completion_tokens: 2 * n as u64,
                cost: Nanos(1_000 + n),
                status: if n % 7 == 0 { 500 } else { 200 },
                latency_ms: (n * 997 % 70_000) as u64,
                created_at: 20_000 * DAY_MS + n * 5 * HOUR_MS,
                ..Default::default()
            })
            .collect();
        store
            .write_usage_batch(&records, super::super::BatchAttempt::First)
            .await
            .unwrap();
        let mut expected: BTreeMap<(i64, i64), Totals> = BTreeMap::new();
        for record in &records {
            let day = record.created_at.div_euclid(DAY_MS) * DAY_MS;
            expected
                .entry((record.user_id, day))
                .or_default()
                .add(record);
        }
        let expected: Vec<Vec<i64>> = expected
            .into_iter()
            .map(|((user_id, day), totals)| {
                [user_id, day]
                    .into_iter()
                    .chain(totals.sums)
                    .chain(totals.latency)
                    .collect()
            })
            .collect();
        assert_eq!(user_daily_rows(&store).await, expected);
    }

    /// Every running row: key, day, user, then every summed column.
    async fn running_rows(store: &Store) -> Vec<Vec<i64>> {
        use sqlx::Row;
        let summed = summed_columns();
        let read = format!(
            "SELECT key_id, day, user_id, {} FROM {RUNNING_TABLE} ORDER BY key_id, day",
            summed.join(", ")
        );
        let rows = sqlx::query(&read).fetch_all(&store.pool).await.unwrap();
        rows.iter()
            .map(|row| (0..3 + summed.len()).map(|i| row.get(i)).collect())
            .collect()
    }

    /// The running rows the writer keeps from batches in any time order (late records
    /// landing before, between and after a key's rows; batches spanning several days)
    /// are each key's running sums over the days it was used, column for column.
    #[tokio::test]
    async fn running_totals_written_out_of_order_are_each_keys_running_sums() {
        let (store, _dir) = crate::store::test_support::temp_store().await;
        let records: Vec<UsageRecord> = (0..120_i64)
            .map(|n| UsageRecord {
                request_id: format!("r{n}"),
                user_id: n % 2 + 1,
                key_id: n % 4 + 1,
                prompt_tokens: n as u64,
                completion_tokens: 3 * n as u64,
                cost: Nanos(1_000 + 7 * n),
                status: if n % 6 == 0 { 429 } else { 200 },
                latency_ms: (n * 991 % 70_000) as u64,
                created_at: 20_000 * DAY_MS + n * 7 * HOUR_MS,
                ..Default::default()
            })
            .collect();
        let batches: Vec<&[UsageRecord]> = records.chunks(9).collect();
        for n in [5, 0, 13, 2, 7, 1, 12, 3, 11, 4, 10, 6, 9, 8] {
            store
                .write_usage_batch(batches[n], super::super::BatchAttempt::First)
                .await
                .unwrap();
        }
        let written = running_rows(&store).await;
        // Each key's running sums, one row per day it was used, computed from the records.
        let mut expected: BTreeMap<(i64, i64), (i64, Totals)> = BTreeMap::new();
        for record in &records {
            let day = record.created_at.div_euclid(DAY_MS) * DAY_MS;
            expected
                .entry((record.key_id, day))
                .or_insert((record.user_id, Totals::default()));
        }
        for ((key_id, day), (_, totals)) in expected.iter_mut() {
            for record in records
                .iter()
                .filter(|r| r.key_id == *key_id && r.created_at < day + DAY_MS)
            {
                totals.add(record);
            }
        }
        let expected: Vec<Vec<i64>> = expected
            .into_iter()
            .map(|((key_id, day), (user_id, totals))| {
                [key_id, day, user_id]
                    .into_iter()
                    .chain(totals.sums)
                    .chain(totals.latency)
                    .collect()
            })
            .collect();
        assert_eq!(written, expected);
    }

    /// Each key's totals of all time, as the writer keeps them, equal its last running
    /// row: what migration 0027's backfill copies.
    #[tokio::test]
    async fn the_key_totals_backfill_rebuilds_what_the_writer_wrote() {
        let (store, _dir) = crate::store::test_support::temp_store().await;
        let records: Vec<UsageRecord> = (0..60_i64)
            .map(|n| UsageRecord {
                request_id: format!("r{n}"),
                user_id: n % 2 + 1,
                key_id: n % 4 + 1,
                completion_tokens: 3 * n as u64,
                cost: Nanos(1_000 + 7 * n),
                status: if n % 6 == 0 { 429 } else { 200 },
                latency_ms: (n * 991 % 70_000) as u64,
                created_at: 20_000 * DAY_MS + n * 9 * HOUR_MS,
                ..Default::default()
            })
            .collect();
        for batch in records.chunks(7).rev() {
            store
                .write_usage_batch(batch, super::super::BatchAttempt::First)
                .await
                .unwrap();
        }
        let read = |store: Store| async move {
            use sqlx::Row;
            let summed = summed_columns();
            let sql = format!(
                "SELECT key_id, {} FROM usage_rollups_key_totals ORDER BY key_id",
                summed.join(", ")
            );
            let rows = sqlx::query(&sql).fetch_all(&store.pool).await.unwrap();
            rows.iter()
                .map(|row| (0..1 + summed.len()).map(|i| row.get(i)).collect())
                .collect::<Vec<Vec<i64>>>()
        };
        let written = read(store.clone()).await;
        assert_eq!(written.len(), 4, "one row per key");
        let migration = include_str!("../../migrations/sqlite/0027_usage_rollups_key_totals.sql");
        let backfill = &migration[migration.find("INSERT INTO").unwrap()..];
        sqlx::query("DELETE FROM usage_rollups_key_totals")
            .execute(&store.pool)
            .await
            .unwrap();
        sqlx::query(backfill).execute(&store.pool).await.unwrap();
        assert_eq!(read(store.clone()).await, written);
    }

    #[test]
    fn a_batch_adds_each_days_totals_to_that_day_and_every_later_one() {
        let record = |key_id, day: i64, cost| UsageRecord {
            key_id,
            user_id: 7,
            cost: Nanos(cost),
            created_at: day * DAY_MS + 5,
            ..Default::default()
        };
        let running = KeyRunning::of(&[
            record(2, 10, 1),
            record(1, 12, 20),
            record(2, 12, 300),
            record(2, 10, 4_000),
        ]);
        let seeds: Vec<[i64; 3]> = [(1, 12), (2, 10), (2, 12)]
            .map(|(key, day)| [key, day * DAY_MS, 7])
            .to_vec();
        assert_eq!(running.seeds, seeds);
        let spans: Vec<(i64, i64, i64, i64, i64)> = running
            .spans
            .iter()
            .map(|s| (s.key_id, s.from, s.to, s.totals.sums[0], s.totals.sums[8]))
            .collect();
        assert_eq!(
            spans,
            [
                (1, 12 * DAY_MS, i64::MAX, 1, 20),
                (2, 10 * DAY_MS, 12 * DAY_MS, 2, 4_001),
                (2, 12 * DAY_MS, i64::MAX, 3, 4_301),
            ]
        );
    }

    #[test]
    fn upserts_add_to_the_stored_row() {
        let sql = upsert_sql(Backend::Postgres, Table::Global, 2);
        assert!(sql.starts_with(
            "INSERT INTO usage_rollups_global (hour, model, channel_id, status, requests"
        ));
        assert!(sql.contains("ON CONFLICT (hour, model, channel_id, status) DO UPDATE SET requests = CASE WHEN usage_rollups_global.requests > 9223372036854775807 - excluded.requests THEN 9223372036854775807 ELSE usage_rollups_global.requests + excluded.requests END"), "{sql}");
        assert!(
            sql.contains("$58) ON CONFLICT") && !sql.contains("$59"),
            "{sql}"
        );
        assert!(sql.ends_with("ELSE usage_rollups_global.latency_15 + excluded.latency_15 END"));
        assert_eq!(hour_of(HOUR_MS + 1), HOUR_MS);
    }
}
