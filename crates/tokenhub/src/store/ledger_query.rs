//! Reading the credit ledger: a user's balance history (credits and debits outside of
//! requests), newest first.

use sqlx::Row;

use super::{Store, StoreResult};
use crate::ledger::money::Nanos;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerEntry {
    pub id: i64,
    pub user_id: i64,
    pub amount: Nanos,
    /// initial, trial, admin or redemption.
    pub kind: String,
    pub reason: String,
    pub created_at: i64,
}

impl Store {
    /// Entries of one user older than `before_id` (all when `None`), newest first.
    pub async fn ledger_entries(
        &self,
        user_id: i64,
        before_id: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<LedgerEntry>> {
        let rows = sqlx::query(
            "SELECT id, user_id, amount_nano, kind, reason, created_at FROM ledger_entries \
             WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(user_id)
        .bind(before_id.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(LedgerEntry {
                    id: row.try_get("id")?,
                    user_id: row.try_get("user_id")?,
                    amount: Nanos(row.try_get("amount_nano")?),
                    kind: row.try_get("kind")?,
                    reason: row.try_get("reason")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::ledger::money::Nanos;
    use crate::store::LedgerKind;
    use crate::store::test_support::temp_store;

    #[tokio::test]
    async fn lists_a_users_entries_newest_first_in_pages() {
        let (store, _dir) = temp_store().await;
        let user = store
            .create_user("u", "user", None, Nanos(10))
            .await
            .unwrap();
        store
            .credit_user(user.id, Nanos(-3), LedgerKind::Admin, "fix")
            .await
            .unwrap();
        let entries = store.ledger_entries(user.id, None, 10).await.unwrap();
        let kinds: Vec<_> = entries
            .iter()
            .map(|e| (e.kind.as_str(), e.amount))
            .collect();
        assert_eq!(kinds, [("admin", Nanos(-3)), ("initial", Nanos(10))]);
        let older = store
            .ledger_entries(user.id, Some(entries[0].id), 10)
            .await
            .unwrap();
        assert_eq!(older.len(), 1);
        assert!(
            store
                .ledger_entries(user.id + 1, None, 10)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
