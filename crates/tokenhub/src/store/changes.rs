//! The change feed (migration 0013): every mutation a running gateway must see writes one
//! row in the same transaction, saying what changed. Gateways read the rows after the last
//! id they applied, so a change costs what changed, not a rebuild of everything.

use sqlx::Row;

use super::{Store, StoreResult, now_ms};

/// What a mutation changed, as far as running gateways care.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Change {
    /// A key's status, limits or existence.
    Key(i64),
    /// A user's status, role or limits, or its keys as a whole (revoked together).
    User(i64),
    /// A user's balance (a credit, a redemption).
    Balance(i64),
    /// Models, prices, channels or fallbacks: the small catalogue, rebuilt whole.
    Catalog,
}

impl Change {
    fn kind(self) -> (&'static str, i64) {
        match self {
            Change::Key(id) => ("key", id),
            Change::User(id) => ("user", id),
            Change::Balance(id) => ("balance", id),
            Change::Catalog => ("catalog", 0),
        }
    }

    fn parse(kind: &str, id: i64) -> Option<Change> {
        match kind {
            "key" => Some(Change::Key(id)),
            "user" => Some(Change::User(id)),
            "balance" => Some(Change::Balance(id)),
            "catalog" => Some(Change::Catalog),
            _ => None,
        }
    }
}

/// Where seeded rows come from; each remembers its own digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeedSource {
    /// The operator's configuration file (`models`, `channels`).
    ConfigFile = 1,
    /// The built-in catalogue and preset channels of this binary.
    BuiltIn = 2,
}

/// One row of the feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChangeRow {
    pub id: i64,
    /// `None` for a kind this version does not know (written by a newer one): the reader
    /// then treats it as "anything may have changed".
    pub change: Option<Change>,
}

/// Records `change` inside the caller's transaction, so it is seen exactly when the
/// mutation is.
///
/// Readers go by id, so ids must become visible in order. SQLite has one writer at a
/// time. On PostgreSQL an id is drawn at insert but seen at commit, so two transactions
/// could show 11 before 10 and a reader past 11 would never see 10: a transaction-scoped
/// advisory lock, taken before the id is drawn and held until commit, keeps them in order.
pub(super) async fn record(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    change: Change,
) -> StoreResult<()> {
    if tx.backend_name() == "PostgreSQL" {
        sqlx::query("SELECT pg_advisory_xact_lock(13013)")
            .execute(&mut **tx)
            .await?;
    }
    let (kind, id) = change.kind();
    sqlx::query("INSERT INTO changes (kind, entity_id, created_at) VALUES ($1, $2, $3)")
        .bind(kind)
        .bind(id)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    /// Changes with an id above `after`, oldest first, at most `limit`.
    pub async fn changes_after(&self, after: i64, limit: i64) -> StoreResult<Vec<ChangeRow>> {
        let rows = sqlx::query(
            "SELECT id, kind, entity_id FROM changes WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let kind: String = row.try_get("kind")?;
                Ok(ChangeRow {
                    id: row.try_get("id")?,
                    change: Change::parse(&kind, row.try_get("entity_id")?),
                })
            })
            .collect()
    }

    /// The newest change's id (0 when there is none): where a fresh reader starts.
    pub async fn last_change_id(&self) -> StoreResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) FROM changes")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Deletes changes older than `before_ms` (Unix ms); returns how many.
    pub async fn prune_changes(&self, before_ms: i64) -> StoreResult<u64> {
        let deleted = sqlx::query("DELETE FROM changes WHERE created_at < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected())
    }

    /// The SHA-256 of the seed set last applied from `source` (see `server::seed`).
    pub async fn applied_seeds(&self, source: SeedSource) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT sha256 FROM applied_config WHERE id = $1")
                .bind(source as i64)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn set_applied_seeds(&self, source: SeedSource, sha256: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO applied_config (id, sha256, applied_at) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET sha256 = excluded.sha256, applied_at = excluded.applied_at",
        )
        .bind(source as i64)
        .bind(sha256)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
