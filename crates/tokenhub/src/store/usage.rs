//! Usage records: one per relay request. Writing a batch debits the owners' balances and
//! the keys' spend in the same transaction, so Σ cost of records = Σ debits, always.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use sqlx::pool::PoolConnection;
use sqlx::{Any, Connection, Row};

use super::rollups::{BatchRollups, Statement};
use super::usage_sqlite::LedgerConnection;
use super::{Backend, Store, StoreError, StoreResult};
use crate::ledger::money::{MAX_AMOUNT, MAX_REQUEST_COST, Nanos};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRecord {
    pub request_id: String,
    pub user_id: i64,
    pub key_id: i64,
    pub model: String,
    pub channel_id: Option<i64>,
    pub prompt_tokens: u64,
    pub cached_tokens: u64,
    /// Prompt tokens written to the provider's cache (priced apart; part of `prompt_tokens`).
    pub cache_write_tokens: u64,
    /// The part of `cache_write_tokens` written for an hour (priced apart).
    pub cache_write_1h_tokens: u64,
    /// The part of `cached_tokens` read from an explicit cache (priced apart).
    pub explicit_cached_tokens: u64,
    /// Which of the model's prices applied: `standard`, or a price tier's name.
    pub price_tier: String,
    pub completion_tokens: u64,
    pub cost: Nanos,
    /// The HTTP status the client saw (200 for a stream that started, even if it broke later).
    pub status: u16,
    pub error: Option<String>,
    pub stream: bool,
    /// True when tokens were counted locally because the upstream reported no usage.
    pub estimated: bool,
    pub latency_ms: u64,
    pub ttft_ms: Option<u64>,
    pub created_at: i64,
}

/// Rows per multi-row `INSERT`, largest first. Each statement is one round trip to the
/// database (for SQLite, a hop to its worker thread), so a batch of records goes out in
/// a few statements rather than one per record; a fixed set of sizes keeps the prepared
/// statement cache small. 64 rows × 20 columns stays under every backend's bind limit.
pub(super) const INSERT_ROW_COUNTS: [usize; 7] = [64, 32, 16, 8, 4, 2, 1];
const INSERT_COLUMNS: usize = 20;

/// The largest statement size that fits in `pending` records.
fn insert_rows(pending: usize) -> usize {
    INSERT_ROW_COUNTS
        .into_iter()
        .find(|rows| *rows <= pending)
        .unwrap_or(1)
}

/// `items` cut into runs of `INSERT_ROW_COUNTS` sizes, largest first.
pub(super) fn statement_chunks<T>(mut items: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if items.is_empty() {
            return None;
        }
        let (chunk, rest) = items.split_at(insert_rows(items.len()));
        items = rest;
        Some(chunk)
    })
}

/// What a batch takes from each user's balance and adds to each key's spend, in id
/// order (so concurrent writers lock rows in the same order).
pub(super) struct Debits {
    pub(super) users: BTreeMap<i64, i64>,
    pub(super) keys: BTreeMap<i64, i64>,
}

/// The debits' statements: an amount, then the account's id.
const DEBIT_USER: &str = "UPDATE users SET balance_nano = balance_nano - $1 WHERE id = $2";
const ADD_KEY_SPEND: &str = "UPDATE api_keys SET spent_nano = spent_nano + $1 WHERE id = $2";

impl Debits {
    /// The batch's debits, summed exactly; a batch whose costs are negative or whose sums
    /// leave the storable range is refused whole (the writer then isolates the record).
    fn of(records: &[UsageRecord]) -> StoreResult<Debits> {
        let mut users: BTreeMap<i64, i128> = BTreeMap::new();
        let mut keys: BTreeMap<i64, i128> = BTreeMap::new();
        for record in records.iter().filter(|r| !r.cost.is_zero()) {
            if record.cost < Nanos::ZERO || record.cost > MAX_REQUEST_COST {
                return Err(StoreError::OutOfRange(format!(
                    "request {} costs {}, outside 0..={MAX_REQUEST_COST}",
                    record.request_id, record.cost
                )));
            }
            *users.entry(record.user_id).or_default() += i128::from(record.cost.0);
            *keys.entry(record.key_id).or_default() += i128::from(record.cost.0);
        }
        let storable = |sums: BTreeMap<i64, i128>| -> StoreResult<BTreeMap<i64, i64>> {
            sums.into_iter()
                .map(|(id, sum)| match i64::try_from(sum) {
                    Ok(sum) if Nanos(sum).is_storable() => Ok((id, sum)),
                    _ => Err(StoreError::OutOfRange(format!(
                        "a batch debits {sum} nano-USD from one account"
                    ))),
                })
                .collect()
        };
        Ok(Debits {
            users: storable(users)?,
            keys: storable(keys)?,
        })
    }
}

/// `INSERT INTO usage_records (…) VALUES ($1, …, $20), ($21, …)` for `rows` records on
/// PostgreSQL; plain positional `?` on SQLite, where sqlx resolves every `$N` by name
/// through a linear scan of the statement's parameter list (quadratic in the row count:
/// 3% of the gateway's CPU at 64 rows).
fn insert_sql(backend: Backend, rows: usize) -> &'static str {
    static SQL: std::sync::LazyLock<[Vec<String>; 2]> =
        std::sync::LazyLock::new(|| [Backend::Sqlite, Backend::Postgres].map(statements));
    let index = INSERT_ROW_COUNTS
        .iter()
        .position(|n| *n == rows)
        .expect("a size from INSERT_ROW_COUNTS");
    &SQL[usize::from(backend == Backend::Postgres)][index]
}

fn statements(backend: Backend) -> Vec<String> {
    INSERT_ROW_COUNTS
        .iter()
        .map(|rows| {
            format!(
                "INSERT INTO usage_records (request_id, user_id, key_id, model, channel_id, \
                 prompt_tokens, cached_tokens, cache_write_tokens, completion_tokens, cost_nano, \
                 status, error, stream, estimated, latency_ms, ttft_ms, created_at, \
                 cache_write_1h_tokens, explicit_cached_tokens, price_tier) VALUES {}",
                placeholders(backend, *rows, INSERT_COLUMNS)
            )
        })
        .collect()
}

/// `(?, …), (?, …)` on SQLite, `($1, …), ($n+1, …)` on PostgreSQL: `rows` rows of `columns`.
pub(super) fn placeholders(backend: Backend, rows: usize, columns: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|row| {
            let params: Vec<String> = (1..=columns)
                .map(|column| match backend {
                    Backend::Sqlite => "?".to_owned(),
                    Backend::Postgres => format!("${}", row * columns + column),
                })
                .collect();
            format!("({})", params.join(", "))
        })
        .collect();
    values.join(", ")
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Where a statement's values go, in parameter order: a sqlx query (either backend), or
/// a statement of the ledger's own SQLite connection (`usage_sqlite.rs`). One binding
/// per statement text, whichever connection runs it.
pub(super) trait Bind<'q>: Sized {
    fn int(self, value: i64) -> Self;
    fn optional_int(self, value: Option<i64>) -> Self;
    fn text(self, value: &'q str) -> Self;
    fn optional_text(self, value: Option<&'q str>) -> Self;
}

impl<'q> Bind<'q> for AnyQuery<'q> {
    fn int(self, value: i64) -> Self {
        self.bind(value)
    }
    fn optional_int(self, value: Option<i64>) -> Self {
        self.bind(value)
    }
    fn text(self, value: &'q str) -> Self {
        self.bind(value)
    }
    fn optional_text(self, value: Option<&'q str>) -> Self {
        self.bind(value)
    }
}

/// Binds one record's `INSERT_COLUMNS` values, in the statement's column order.
fn bind_record<'q, B: Bind<'q>>(query: B, record: &'q UsageRecord) -> B {
    query
        .text(&record.request_id)
        .int(record.user_id)
        .int(record.key_id)
        .text(&record.model)
        .optional_int(record.channel_id)
        .int(to_i64(record.prompt_tokens))
        .int(to_i64(record.cached_tokens))
        .int(to_i64(record.cache_write_tokens))
        .int(to_i64(record.completion_tokens))
        .int(record.cost.0)
        .int(i64::from(record.status))
        .optional_text(record.error.as_deref())
        .int(i64::from(record.stream))
        .int(i64::from(record.estimated))
        .int(to_i64(record.latency_ms))
        .optional_int(record.ttft_ms.map(to_i64))
        .int(record.created_at)
        .int(to_i64(record.cache_write_1h_tokens))
        .int(to_i64(record.explicit_cached_tokens))
        .text(&record.price_tier)
}

/// Reads a row selected with `RECORD_COLUMNS`.
pub(super) fn record_from_row(row: &sqlx::any::AnyRow) -> StoreResult<UsageRecord> {
    let unsigned = |name: &str| -> StoreResult<u64> {
        Ok(u64::try_from(row.try_get::<i64, _>(name)?).unwrap_or(0))
    };
    Ok(UsageRecord {
        request_id: row.try_get("request_id")?,
        user_id: row.try_get("user_id")?,
        key_id: row.try_get("key_id")?,
        model: row.try_get("model")?,
        channel_id: row.try_get("channel_id")?,
        prompt_tokens: unsigned("prompt_tokens")?,
        cached_tokens: unsigned("cached_tokens")?,
        cache_write_tokens: unsigned("cache_write_tokens")?,
        cache_write_1h_tokens: unsigned("cache_write_1h_tokens")?,
        explicit_cached_tokens: unsigned("explicit_cached_tokens")?,
        price_tier: row.try_get("price_tier")?,
        completion_tokens: unsigned("completion_tokens")?,
        cost: Nanos(row.try_get("cost_nano")?),
        status: u16::try_from(row.try_get::<i64, _>("status")?).unwrap_or(0),
        error: row.try_get("error")?,
        stream: row.try_get::<i64, _>("stream")? != 0,
        estimated: row.try_get::<i64, _>("estimated")? != 0,
        latency_ms: unsigned("latency_ms")?,
        ttft_ms: row
            .try_get::<Option<i64>, _>("ttft_ms")?
            .map(|v| u64::try_from(v).unwrap_or(0)),
        created_at: row.try_get("created_at")?,
    })
}

pub(super) const RECORD_COLUMNS: &str = "request_id, user_id, key_id, model, channel_id, prompt_tokens, cached_tokens, \
     cache_write_tokens, completion_tokens, cost_nano, status, error, stream, estimated, latency_ms, ttft_ms, \
     created_at, cache_write_1h_tokens, explicit_cached_tokens, price_tier";

/// Whether a batch was tried before (and so may have been committed already).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchAttempt {
    First,
    Retry,
}

/// What a successful write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// This call committed the batch.
    Now,
    /// A retry found the batch, or some of its records, committed by an earlier attempt
    /// whose reply was lost (the rest, if any, were written now).
    Earlier,
}

pub(super) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Store {
    /// Writes one batch through a writer of its own; see `UsageWriter::write`.
    pub async fn write_usage_batch(
        &self,
        records: &[UsageRecord],
        attempt: BatchAttempt,
    ) -> StoreResult<Written> {
        self.usage_writer().write(records, attempt).await
    }

    /// The ledger writer's access to the database, with a connection of its own.
    pub fn usage_writer(&self) -> UsageWriter {
        UsageWriter {
            store: self.clone(),
            connection: None,
            sqlite: None,
        }
    }

    pub async fn usage_by_request_id(&self, request_id: &str) -> StoreResult<Option<UsageRecord>> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM usage_records WHERE request_id = $1");
        let row = sqlx::query(&sql)
            .bind(request_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    /// Parked records (request id, error), oldest first.
    pub async fn dead_letters(&self) -> StoreResult<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT request_id, error FROM usage_dead_letters ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("request_id")?, row.try_get("error")?)))
            .collect()
    }

    pub async fn usage_count(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM usage_records")
            .fetch_one(&self.pool)
            .await?)
    }

    pub async fn total_usage_cost(&self) -> StoreResult<Nanos> {
        let sum: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(cost_nano), 0) AS BIGINT) FROM usage_records",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(Nanos(sum))
    }
}

/// Writes usage batches for the ledger writer, keeping one connection between batches.
/// On SQLite it is a connection of its own, used from a blocking thread
/// (`usage_sqlite.rs`): a batch is one hand-over, not a hop per statement. On PostgreSQL
/// it is a pooled one, kept to skip the ping of a connection taken from the pool.
pub struct UsageWriter {
    store: Store,
    connection: Option<PoolConnection<Any>>,
    sqlite: Option<LedgerConnection>,
}

impl UsageWriter {
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Writes a batch of records and applies their debits atomically.
    ///
    /// Idempotent per record on a retry: records already stored (an earlier attempt
    /// committed them and its acknowledgement was lost, or a replayed spill file holds
    /// them again) are neither written nor debited again. A first attempt skips that
    /// lookup: only a retry can find its records written.
    pub async fn write(
        &mut self,
        records: &[UsageRecord],
        attempt: BatchAttempt,
    ) -> StoreResult<Written> {
        if records.is_empty() {
            return Ok(Written::Now);
        }
        if attempt == BatchAttempt::Retry {
            let stored = self.stored_request_ids(records).await?;
            if !stored.is_empty() {
                let rest: Vec<UsageRecord> = records
                    .iter()
                    .filter(|r| !stored.contains(&r.request_id))
                    .cloned()
                    .collect();
                if !rest.is_empty() {
                    self.write_new(&rest).await?;
                }
                return Ok(Written::Earlier);
            }
        }
        self.write_new(records).await.map(|()| Written::Now)
    }

    /// Which of `records` are stored already, by request id.
    async fn stored_request_ids(
        &mut self,
        records: &[UsageRecord],
    ) -> StoreResult<std::collections::HashSet<String>> {
        let mut sql =
            super::sql::Sql::new("SELECT request_id FROM usage_records WHERE request_id IN (");
        for (n, record) in records.iter().enumerate() {
            if n > 0 {
                sql.push(", ");
            }
            sql.bind(record.request_id.clone());
        }
        sql.push(")");
        let rows = sql.fetch_all(&self.store.pool).await?;
        rows.iter()
            .map(|row| Ok(row.try_get("request_id")?))
            .collect()
    }

    async fn write_new(&mut self, records: &[UsageRecord]) -> StoreResult<()> {
        let debits = Debits::of(records)?;
        match self.store.backend {
            Backend::Sqlite => self.write_on_own_connection(records, debits).await,
            Backend::Postgres => self.write_pooled(records, debits).await,
        }
    }

    async fn write_on_own_connection(
        &mut self,
        records: &[UsageRecord],
        debits: Debits,
    ) -> StoreResult<()> {
        let Some(path) = self.store.file.clone() else {
            return Err(StoreError::Unavailable(
                "the SQLite database has no file".into(),
            ));
        };
        let kept = self.sqlite.take();
        let records = records.to_vec();
        let written = tokio::task::spawn_blocking(move || {
            // A failed transaction is rolled back, and its connection dropped with it.
            let mut connection = match kept {
                Some(connection) => connection,
                None => LedgerConnection::open(&path)?,
            };
            connection.write(&records, &BatchRollups::of(&records), &debits)?;
            Ok::<_, rusqlite::Error>(connection)
        })
        .await;
        match written {
            Ok(Ok(connection)) => {
                self.sqlite = Some(connection);
                Ok(())
            }
            Ok(Err(error)) => Err(error.into()),
            Err(failed) => Err(StoreError::Unavailable(format!(
                "the ledger's SQLite call did not finish: {failed}"
            ))),
        }
    }

    async fn write_pooled(&mut self, records: &[UsageRecord], debits: Debits) -> StoreResult<()> {
        let rollups = BatchRollups::of(records);
        let mut connection = match self.connection.take() {
            Some(connection) => connection,
            None => self.store.pool.acquire().await?,
        };
        let written = write_in_transaction(&mut connection, records, &rollups, &debits).await;
        match written {
            Ok(()) => self.connection = Some(connection),
            // The connection may be broken, or hold a transaction left open by the failed
            // statement: closing it rolls that back, and it never goes back to the pool.
            Err(_) => connection.close_on_drop(),
        }
        written
    }

    /// Whether the database answers a trivial query: tells a refused batch (split it)
    /// from an unreachable database (wait for it). `&mut`: the kept connection is not
    /// `Sync`, so the writer's future must not hold a shared borrow across an await.
    pub async fn database_answers(&mut self) -> bool {
        let ping = sqlx::query_scalar::<_, i64>("SELECT 1").fetch_one(&self.store.pool);
        matches!(
            tokio::time::timeout(std::time::Duration::from_secs(2), ping).await,
            Ok(Ok(1))
        )
    }

    /// Keeps a record the database refused, whole, in `usage_dead_letters`.
    pub async fn park(&mut self, record: &UsageRecord, error: &str) -> StoreResult<()> {
        let json = serde_json::to_string(record).unwrap_or_default();
        sqlx::query(
            "INSERT INTO usage_dead_letters (request_id, record, error, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&record.request_id)
        .bind(json)
        .bind(error)
        .bind(super::now_ms())
        .execute(&self.store.pool)
        .await?;
        Ok(())
    }

    /// The stored balances of `users` and spends of `keys`, for the books to take again
    /// after a retry found its batch committed earlier (see the ledger writer).
    pub async fn stored_amounts(
        &mut self,
        users: impl IntoIterator<Item = i64>,
        keys: impl IntoIterator<Item = i64>,
    ) -> StoreResult<(Vec<(i64, Nanos)>, Vec<(i64, Nanos)>)> {
        let mut balances = Vec::new();
        for id in users {
            if let Some(user) = self.store.user_by_id(id).await? {
                balances.push((id, user.balance));
            }
        }
        let mut spends = Vec::new();
        for id in keys {
            if let Some(key) = self.store.key_by_id(id).await? {
                spends.push((id, key.spent));
            }
        }
        Ok((balances, spends))
    }

    /// What a request of this user's key may still cost before the user's balance or the
    /// key's spend leaves the storable range (see `ledger::money::MAX_AMOUNT`).
    pub async fn room_for(&mut self, user_id: i64, key_id: i64) -> StoreResult<Nanos> {
        let (balances, spends) = self.stored_amounts([user_id], [key_id]).await?;
        let balance_room = balances
            .first()
            .map_or(MAX_AMOUNT, |(_, b)| MAX_AMOUNT + *b);
        let spend_room = spends.first().map_or(MAX_AMOUNT, |(_, s)| MAX_AMOUNT - *s);
        Ok(balance_room.min(spend_room))
    }

    /// Hands the kept connection back to the pool, or closes the SQLite one (the next
    /// batch takes or opens one again): shutdown closes the store after a flush.
    pub fn release(&mut self) {
        self.connection = None;
        self.sqlite = None;
    }
}

/// One statement of a batch's transaction. Every statement text comes from a fixed set
/// (`insert_sql`, the rollups' upserts, the two debits), so each is prepared once per
/// connection and then found in its statement cache.
pub(super) enum BatchStatement<'a> {
    /// Up to `INSERT_ROW_COUNTS[0]` records.
    Insert(&'a [UsageRecord]),
    Rollup(Statement<'a>),
    /// A debit's text (`DEBIT_USER` or `ADD_KEY_SPEND`), its account and its amount.
    Debit(&'static str, i64, i64),
}

impl<'a> BatchStatement<'a> {
    pub(super) fn sql(&self, backend: Backend) -> &'static str {
        match self {
            BatchStatement::Insert(records) => insert_sql(backend, records.len()),
            BatchStatement::Rollup(statement) => statement.sql(backend),
            BatchStatement::Debit(sql, _, _) => sql,
        }
    }

    pub(super) fn bind<B: Bind<'a>>(&self, query: B) -> B {
        match self {
            BatchStatement::Insert(records) => records.iter().fold(query, bind_record),
            BatchStatement::Rollup(statement) => statement.bind(query),
            BatchStatement::Debit(_, id, amount) => query.int(*amount).int(*id),
        }
    }
}

/// What a batch's transaction runs, in order, whichever connection runs it: the
/// records, their rollups, then the debits in id order (so concurrent writers lock rows
/// in the same order on PostgreSQL).
pub(super) fn batch_statements<'a>(
    records: &'a [UsageRecord],
    rollups: &'a BatchRollups,
    debits: &'a Debits,
) -> impl Iterator<Item = BatchStatement<'a>> {
    let debits = [(DEBIT_USER, &debits.users), (ADD_KEY_SPEND, &debits.keys)]
        .into_iter()
        .flat_map(|(sql, amounts)| {
            amounts
                .iter()
                .map(move |(id, amount)| BatchStatement::Debit(sql, *id, *amount))
        });
    statement_chunks(records)
        .map(BatchStatement::Insert)
        .chain(rollups.statements().into_iter().map(BatchStatement::Rollup))
        .chain(debits)
}

/// One PostgreSQL transaction of the batch's statements (sqlx's statement cache, an LRU
/// of 100, holds their ~40 texts).
async fn write_in_transaction(
    connection: &mut AnyConnection,
    records: &[UsageRecord],
    rollups: &BatchRollups,
    debits: &Debits,
) -> StoreResult<()> {
    let mut tx = connection.begin().await?;
    for statement in batch_statements(records, rollups, debits) {
        let query = statement.bind(sqlx::query(statement.sql(Backend::Postgres)));
        query.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewKey;
    use crate::store::test_support::temp_store;

    pub fn record(request_id: &str, user_id: i64, key_id: i64, cost: i64) -> UsageRecord {
        UsageRecord {
            request_id: request_id.into(),
            user_id,
            key_id,
            model: "m".into(),
            channel_id: None,
            prompt_tokens: 10,
            cached_tokens: 0,
            cache_write_tokens: 0,
            cache_write_1h_tokens: 0,
            explicit_cached_tokens: 0,
            price_tier: "standard".into(),
            completion_tokens: 5,
            cost: Nanos(cost),
            status: 200,
            error: None,
            stream: true,
            estimated: false,
            latency_ms: 12,
            ttft_ms: Some(3),
            created_at: 1,
        }
    }

    #[tokio::test]
    async fn the_ledger_connection_prepares_each_statement_once_and_writes_every_batch() {
        let (store, _dir) = temp_store().await;
        let (user, key) =
            crate::store::test_support::user_with_key(&store, Nanos(1000), Nanos(1000)).await;
        let mut writer = store.usage_writer();
        let prepared = |writer: &UsageWriter| writer.sqlite.as_ref().unwrap().prepared();
        let batch = |first: usize| -> Vec<UsageRecord> {
            (first..first + 3)
                .map(|n| record(&format!("r{n}"), user, key, 10))
                .collect()
        };
        writer.write(&batch(0), BatchAttempt::First).await.unwrap();
        let shapes = prepared(&writer);
        // Three records: an insert of 2 rows and one of 1, the rollups, two debits.
        assert!(shapes >= 5, "{shapes}");
        writer.write(&batch(3), BatchAttempt::First).await.unwrap();
        writer.write(&batch(6), BatchAttempt::First).await.unwrap();
        assert_eq!(prepared(&writer), shapes, "the same shapes, prepared once");
        assert_eq!(store.usage_count().await.unwrap(), 9);
        assert_eq!(store.total_usage_cost().await.unwrap(), Nanos(90));
        let balance = store.user_by_id(user).await.unwrap().unwrap().balance;
        assert_eq!(balance, Nanos(910));
    }

    #[tokio::test]
    async fn a_batch_debits_exactly_once() {
        let (store, _dir) = temp_store().await;
        let user = store
            .create_user("u", "user", None, Nanos(1000))
            .await
            .unwrap();
        let key = NewKey {
            user_id: user.id,
            key_hash: "h".into(),
            key_prefix: "p".into(),
            ..Default::default()
        };
        let key = store.create_key(&key).await.unwrap();
        let batch = vec![
            record("r1", user.id, key.id, 100),
            record("r2", user.id, key.id, 50),
        ];
        assert_eq!(
            store
                .write_usage_batch(&batch, BatchAttempt::First)
                .await
                .unwrap(),
            Written::Now
        );
        // A retry of a batch whose commit was not acknowledged is not applied twice.
        assert_eq!(
            store
                .write_usage_batch(&batch, BatchAttempt::Retry)
                .await
                .unwrap(),
            Written::Earlier
        );
        // A retry that overlaps stored records writes and debits only the new one.
        let overlapping = vec![batch[1].clone(), record("r3", user.id, key.id, 25)];
        assert_eq!(
            store
                .write_usage_batch(&overlapping, BatchAttempt::Retry)
                .await
                .unwrap(),
            Written::Earlier
        );
        let batch = vec![batch[0].clone(), batch[1].clone(), overlapping[1].clone()];
        // Delivered again as new, it is refused whole, as data (not a transient error).
        let again = store.write_usage_batch(&batch, BatchAttempt::First).await;
        assert!(again.is_err_and(|error| error.is_refusal()));
        let user = store.user_by_id(user.id).await.unwrap().unwrap();
        assert_eq!(user.balance, Nanos(825));
        assert_eq!(store.recomputed_balance(user.id).await.unwrap(), Nanos(825));
        assert_eq!(
            store.key_by_id(key.id).await.unwrap().unwrap().spent,
            Nanos(175)
        );
        assert_eq!(
            store.usage_by_request_id("r2").await.unwrap().unwrap(),
            batch[1]
        );
        assert_eq!(store.total_usage_cost().await.unwrap(), Nanos(175));
    }

    #[tokio::test]
    async fn a_batch_of_any_size_is_written_whole_across_statements_of_several_sizes() {
        let (store, _dir) = temp_store().await;
        let user = store
            .create_user("u", "user", None, Nanos(1_000_000))
            .await
            .unwrap();
        // 64 + 32 + 8 + 2 + 1 rows: every statement size but two, and no row twice.
        let batch: Vec<UsageRecord> = (0..107)
            .map(|i| {
                let mut r = record(&format!("r{i}"), user.id, 0, i);
                r.error = (i % 2 == 0).then(|| format!("error {i}"));
                r.ttft_ms = (i % 3 != 0).then_some(i as u64);
                r.channel_id = (i % 5 != 0).then_some(i);
                r
            })
            .collect();
        store
            .write_usage_batch(&batch, BatchAttempt::First)
            .await
            .unwrap();
        assert_eq!(store.usage_count().await.unwrap(), 107);
        for record in &batch {
            assert_eq!(
                store
                    .usage_by_request_id(&record.request_id)
                    .await
                    .unwrap()
                    .as_ref(),
                Some(record)
            );
        }
        let total: i64 = (0..107).sum();
        assert_eq!(store.total_usage_cost().await.unwrap(), Nanos(total));
        let user = store.user_by_id(user.id).await.unwrap().unwrap();
        assert_eq!(user.balance, Nanos(1_000_000 - total));
    }

    #[tokio::test]
    async fn a_batch_that_fails_midway_leaves_nothing_behind_and_no_open_transaction() {
        let (store, _dir) = temp_store().await;
        let user = store
            .create_user("u", "user", None, Nanos(1_000))
            .await
            .unwrap();
        let first = vec![record("dup", user.id, 0, 10)];
        store
            .write_usage_batch(&first, BatchAttempt::First)
            .await
            .unwrap();
        // Three fresh rows, then one that breaks the unique request id in a later statement.
        let mut broken: Vec<UsageRecord> = (0..3)
            .map(|i| record(&format!("b{i}"), user.id, 0, 100))
            .collect();
        broken.push(record("dup", user.id, 0, 100));
        for _ in 0..3 {
            let error = store
                .write_usage_batch(&broken, BatchAttempt::First)
                .await
                .unwrap_err();
            assert!(error.to_string().contains("UNIQUE"), "{error}");
        }
        assert_eq!(store.usage_count().await.unwrap(), 1);
        let balance = store.user_by_id(user.id).await.unwrap().unwrap().balance;
        assert_eq!(balance, Nanos(990), "no debit of the failed batch");
        // Every pooled connection still takes a new transaction, and it commits.
        for i in 0..8 {
            let batch = vec![record(&format!("ok{i}"), user.id, 0, 1)];
            store
                .write_usage_batch(&batch, BatchAttempt::First)
                .await
                .unwrap();
        }
        assert_eq!(store.usage_count().await.unwrap(), 9);
        assert_eq!(store.recomputed_balance(user.id).await.unwrap(), Nanos(982));
    }

    #[test]
    fn insert_statements_number_their_parameters_row_after_row() {
        assert_eq!(insert_rows(107), 64);
        assert_eq!(insert_rows(3), 2);
        assert_eq!(insert_rows(1), 1);
        let two = insert_sql(Backend::Postgres, 2);
        assert!(
            two.ends_with(
                "$16, $17, $18, $19, $20), \
                 ($21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35, $36, \
                 $37, $38, $39, $40)"
            ),
            "{two}"
        );
        assert!(insert_sql(Backend::Postgres, 64).ends_with("$1280)"));
        let sqlite = insert_sql(Backend::Sqlite, 64);
        assert_eq!(sqlite.matches('?').count(), 64 * INSERT_COLUMNS);
        assert!(!sqlite.contains('$'));
    }
}
