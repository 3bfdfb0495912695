//! The audit log: every admin action, who did it, when, and the state before and after.

use sqlx::Row;

use super::{Store, StoreResult, now_ms};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub actor_id: Option<i64>,
    pub actor_name: String,
    pub action: String,
    pub target: String,
    /// JSON text, when the action changed an existing thing.
    pub before: Option<String>,
    /// JSON text, when the action left a thing behind.
    pub after: Option<String>,
    pub created_at: i64,
}

impl Store {
    pub async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO audit_log (actor_id, actor_name, action, target, before_json, after_json, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(entry.actor_id)
        .bind(&entry.actor_name)
        .bind(&entry.action)
        .bind(&entry.target)
        .bind(entry.before.as_deref())
        .bind(entry.after.as_deref())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Newest first; `before_id` pages backwards.
    pub async fn audit_entries(
        &self,
        before_id: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT id, actor_id, actor_name, action, target, before_json, after_json, created_at \
             FROM audit_log WHERE id < $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(before_id.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditEntry {
                    id: row.try_get("id")?,
                    actor_id: row.try_get("actor_id")?,
                    actor_name: row.try_get("actor_name")?,
                    action: row.try_get("action")?,
                    target: row.try_get("target")?,
                    before: row.try_get("before_json")?,
                    after: row.try_get("after_json")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }
}
