//! Raw usage records are kept for `[usage] retention_days`; the hourly rollups that
//! summaries, charts and billing read are kept for ever, so Σ rollup cost still equals
//! Σ cost of every record ever written after the records are gone.
//!
//! Deletion is batched (`PURGE_BATCH` rows a transaction) on both backends rather than
//! dropping monthly partitions on PostgreSQL: `usage_records` is one table whose unique
//! `request_id` makes the ledger writer's retries idempotent, and a partitioned table can
//! only enforce uniqueness on keys that include the partition column.

use std::time::Duration;

use crate::store::{Store, StoreResult};

/// Records deleted per statement.
pub const PURGE_BATCH: i64 = 10_000;
/// How often the purge runs.
const PURGE_EVERY: Duration = Duration::from_secs(3600);
/// The first purge waits this long after start: a restart is not slowed by deleting.
const FIRST_PURGE_AFTER: Duration = Duration::from_secs(300);
/// A pause between batches, so other writers get the database in between.
const BETWEEN_BATCHES: Duration = Duration::from_millis(50);

/// Deletes every record created before `cutoff` (Unix ms), batch by batch; how many.
pub async fn purge_before(store: &Store, cutoff: i64) -> StoreResult<u64> {
    let mut purged = 0;
    loop {
        let deleted = store.purge_usage_records(cutoff, PURGE_BATCH).await?;
        purged += deleted;
        if deleted < PURGE_BATCH as u64 {
            return Ok(purged);
        }
        tokio::time::sleep(BETWEEN_BATCHES).await;
    }
}

/// Purges records older than `retention` five minutes after start and every hour after.
pub fn spawn_purge(store: Store, retention: Duration) {
    let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    tokio::spawn(async move {
        let first = tokio::time::Instant::now() + FIRST_PURGE_AFTER;
        let mut every = tokio::time::interval_at(first, PURGE_EVERY);
        loop {
            every.tick().await;
            let cutoff = crate::store::now_ms().saturating_sub(retention_ms);
            match purge_before(&store, cutoff).await {
                Ok(0) => {}
                Ok(purged) => {
                    tracing::info!(purged, cutoff, "purged usage records past their retention")
                }
                Err(error) => {
                    tracing::warn!(%error, "usage record purge failed; retrying in an hour")
                }
            }
        }
    });
}
