//! Versioned readings of balances and key spends (migration 0019): every change bumps
//! the version in the same row update, so of two readings the newer version is the
//! newer value. The shared reservations (`shared/money.rs`) keep only the newest.

use sqlx::Row;

use super::{Store, StoreResult};
use crate::ledger::money::Nanos;

/// An amount as stored, with the version of the change that produced it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Versioned {
    pub amount: Nanos,
    pub version: i64,
}

impl Store {
    /// A user's balance and its version.
    pub async fn balance_version(&self, user_id: i64) -> StoreResult<Option<Versioned>> {
        self.versioned(
            "SELECT balance_nano, balance_version FROM users WHERE id = $1",
            user_id,
        )
        .await
    }

    /// A key's spend and its version.
    pub async fn spent_version(&self, key_id: i64) -> StoreResult<Option<Versioned>> {
        self.versioned(
            "SELECT spent_nano, spent_version FROM api_keys WHERE id = $1",
            key_id,
        )
        .await
    }

    async fn versioned(&self, sql: &'static str, id: i64) -> StoreResult<Option<Versioned>> {
        let row = sqlx::query(sql).bind(id).fetch_optional(&self.pool).await?;
        Ok(match row {
            Some(row) => Some(Versioned {
                amount: Nanos(row.try_get(0)?),
                version: row.try_get(1)?,
            }),
            None => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::ledger::money::Nanos;
    use crate::store::test_support::temp_store;
    use crate::store::users::LedgerKind;

    #[tokio::test]
    async fn every_balance_change_bumps_its_version() {
        let (store, _dir) = temp_store().await;
        let user = store
            .create_user("v", "user", None, Nanos(100))
            .await
            .unwrap();
        let before = store.balance_version(user.id).await.unwrap().unwrap();
        store
            .credit_user(user.id, Nanos(50), LedgerKind::Admin, "test")
            .await
            .unwrap();
        let after = store.balance_version(user.id).await.unwrap().unwrap();
        assert_eq!(after.amount, Nanos(150));
        assert!(after.version > before.version);
    }
}
