//! The `instances` table (migration 0014): one row per running gateway, beating.

use sqlx::Row;

use super::{Store, StoreResult, now_ms};

/// Another instance seen beating recently.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PeerInstance {
    pub id: String,
    pub address: String,
    pub shared_state: bool,
    pub heartbeat_at: i64,
}

/// Rows older than this are removed by whichever instance beats next.
const FORGET_AFTER_MS: i64 = 60_000;

impl Store {
    /// Writes this instance's heartbeat, drops long-silent rows, and returns the other
    /// instances that beat within `live_within_ms`.
    pub async fn instance_heartbeat(
        &self,
        id: &str,
        address: &str,
        shared_state: bool,
        started_at: i64,
        live_within_ms: i64,
    ) -> StoreResult<Vec<PeerInstance>> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO instances (id, address, shared_state, started_at, heartbeat_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
        )
        .bind(id)
        .bind(address)
        .bind(i64::from(shared_state))
        .bind(started_at)
        .bind(now)
        .execute(&self.pool)
        .await?;
        sqlx::query("DELETE FROM instances WHERE heartbeat_at < $1")
            .bind(now - FORGET_AFTER_MS)
            .execute(&self.pool)
            .await?;
        let rows = sqlx::query(
            "SELECT id, address, shared_state, heartbeat_at FROM instances \
             WHERE id <> $1 AND heartbeat_at >= $2 ORDER BY started_at",
        )
        .bind(id)
        .bind(now - live_within_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PeerInstance {
                    id: row.try_get("id")?,
                    address: row.try_get("address")?,
                    shared_state: row.try_get::<i64, _>("shared_state")? != 0,
                    heartbeat_at: row.try_get("heartbeat_at")?,
                })
            })
            .collect()
    }

    /// Removes this instance's row (graceful stop).
    pub async fn instance_gone(&self, id: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM instances WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query_scalar::<_, i64>("SELECT 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(())
    }
}
