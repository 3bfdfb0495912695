//! Users and their money: balances change only together with a ledger entry or usage records.

use sqlx::Row;

use super::changes::{Change, record};
use super::{Store, StoreError, StoreResult, now_ms};
use crate::ledger::money::{MAX_AMOUNT, Nanos};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRow {
    pub id: i64,
    pub name: String,
    pub role: String,
    pub status: String,
    pub balance: Nanos,
}

/// Why money was credited (or debited outside of requests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LedgerKind {
    Initial,
    Trial,
    Admin,
    Redemption,
}

impl LedgerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerKind::Initial => "initial",
            LedgerKind::Trial => "trial",
            LedgerKind::Admin => "admin",
            LedgerKind::Redemption => "redemption",
        }
    }
}

fn user_from_row(row: &sqlx::any::AnyRow) -> StoreResult<UserRow> {
    Ok(UserRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        role: row.try_get("role")?,
        status: row.try_get("status")?,
        balance: Nanos(row.try_get("balance_nano")?),
    })
}

impl Store {
    /// Creates a user; a non-zero opening balance is recorded as an `initial` ledger entry.
    pub async fn create_user(
        &self,
        name: &str,
        role: &str,
        password_hash: Option<&str>,
        opening_balance: Nanos,
    ) -> StoreResult<UserRow> {
        let opening = Credit {
            amount: opening_balance,
            kind: LedgerKind::Initial,
            reason: "opening balance",
        };
        self.create_user_with(name, role, password_hash, opening)
            .await
    }

    /// Creates a user whose first credit (if non-zero) is recorded with the given kind,
    /// e.g. `trial` for self sign-ups, in the same transaction.
    pub async fn create_user_with(
        &self,
        name: &str,
        role: &str,
        password_hash: Option<&str>,
        opening: Credit<'_>,
    ) -> StoreResult<UserRow> {
        let mut tx = self.begin_write().await?;
        let id = insert_user_in(&mut tx, name, role, password_hash).await?;
        if !opening.amount.is_zero() {
            credit_in(&mut tx, id, opening.amount, opening.kind, opening.reason).await?;
        }
        record(&mut tx, Change::User(id)).await?;
        tx.commit().await?;
        self.user_by_name(name)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user '{name}'")))
    }

    pub async fn user_by_name(&self, name: &str) -> StoreResult<Option<UserRow>> {
        let row =
            sqlx::query("SELECT id, name, role, status, balance_nano FROM users WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    pub async fn user_by_id(&self, id: i64) -> StoreResult<Option<UserRow>> {
        let row =
            sqlx::query("SELECT id, name, role, status, balance_nano FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    pub async fn all_users(&self) -> StoreResult<Vec<UserRow>> {
        let rows =
            sqlx::query("SELECT id, name, role, status, balance_nano FROM users ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(user_from_row).collect()
    }

    pub async fn count_users(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Adds `amount` (negative for a debit) to a user's balance with its ledger entry.
    pub async fn credit_user(
        &self,
        user_id: i64,
        amount: Nanos,
        kind: LedgerKind,
        reason: &str,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        credit_in(&mut tx, user_id, amount, kind, reason).await?;
        record(&mut tx, Change::Balance(user_id)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Σ ledger entries − Σ usage costs: what the balance must be. Used by audits and tests.
    /// Usage costs are read from the rollups, which outlive purged records.
    pub async fn recomputed_balance(&self, user_id: i64) -> StoreResult<Nanos> {
        let credits: i64 =
            sqlx::query_scalar("SELECT CAST(COALESCE(SUM(amount_nano), 0) AS BIGINT) FROM ledger_entries WHERE user_id = $1")
                .bind(user_id)
                .fetch_one(&self.pool)
                .await?;
        let costs = self.rolled_up_cost(user_id).await?;
        Ok(Nanos(credits) - costs)
    }
}

/// Inserts an active user with no balance; a taken name is a conflict.
pub(super) async fn insert_user_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    name: &str,
    role: &str,
    password_hash: Option<&str>,
) -> StoreResult<i64> {
    let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?;
    if exists.is_some() {
        return Err(StoreError::Conflict(format!(
            "user '{name}' already exists"
        )));
    }
    sqlx::query_scalar(
        "INSERT INTO users (name, password_hash, role, status, balance_nano, created_at) \
         VALUES ($1, $2, $3, 'active', 0, $4) RETURNING id",
    )
    .bind(name)
    .bind(password_hash)
    .bind(role)
    .bind(now_ms())
    .fetch_one(&mut **tx)
    .await
    .map_err(|error| match &error {
        // Another instance inserted the name between the check and this insert.
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(format!("user '{name}' already exists"))
        }
        _ => StoreError::Database(error),
    })
}

/// A balance change with its ledger meaning.
#[derive(Clone, Copy, Debug)]
pub struct Credit<'a> {
    pub amount: Nanos,
    pub kind: LedgerKind,
    pub reason: &'a str,
}

pub(super) async fn credit_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: i64,
    amount: Nanos,
    kind: LedgerKind,
    reason: &str,
) -> StoreResult<()> {
    let out_of_range = || {
        StoreError::OutOfRange(format!(
            "a change of {amount} would take the balance beyond ±{MAX_AMOUNT}"
        ))
    };
    if !amount.is_storable() {
        return Err(out_of_range());
    }
    // Both terms are within ±MAX_AMOUNT, so the sum cannot overflow on either backend;
    // the condition keeps the result inside the bound the schema enforces.
    let updated = sqlx::query(
        "UPDATE users SET balance_nano = balance_nano + $1 \
         WHERE id = $2 AND balance_nano + $1 BETWEEN $3 AND $4",
    )
    .bind(amount.0)
    .bind(user_id)
    .bind(-MAX_AMOUNT.0)
    .bind(MAX_AMOUNT.0)
    .execute(&mut **tx)
    .await?;
    if updated.rows_affected() == 0 {
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&mut **tx)
            .await?;
        return Err(match exists {
            Some(_) => out_of_range(),
            None => StoreError::NotFound(format!("user id {user_id}")),
        });
    }
    sqlx::query("INSERT INTO ledger_entries (user_id, amount_nano, kind, reason, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(user_id)
        .bind(amount.0)
        .bind(kind.as_str())
        .bind(reason)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::ledger::money::Nanos;
    use crate::store::LedgerKind;
    use crate::store::test_support::temp_store;

    #[tokio::test]
    async fn opening_balance_and_credits_are_in_the_ledger() {
        let (store, _dir) = temp_store().await;
        let before = store.last_change_id().await.unwrap();
        let user = store
            .create_user("ada", "user", None, Nanos::from_usd(2))
            .await
            .unwrap();
        assert_eq!(user.balance, Nanos::from_usd(2));
        store
            .credit_user(user.id, Nanos(-5), LedgerKind::Admin, "correction")
            .await
            .unwrap();
        let user = store.user_by_name("ada").await.unwrap().unwrap();
        assert_eq!(user.balance, Nanos(2_000_000_000 - 5));
        assert_eq!(
            store.recomputed_balance(user.id).await.unwrap(),
            user.balance
        );
        let changes = store.changes_after(before, 10).await.unwrap();
        let changes: Vec<_> = changes.iter().map(|c| c.change).collect();
        assert_eq!(
            changes,
            [
                Some(crate::store::Change::User(user.id)),
                Some(crate::store::Change::Balance(user.id))
            ]
        );
        let duplicate = store.create_user("ada", "user", None, Nanos::ZERO).await;
        assert!(matches!(
            duplicate,
            Err(crate::store::StoreError::Conflict(_))
        ));
    }
}
