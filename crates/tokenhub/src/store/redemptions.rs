//! Redemption codes: prepaid credit, each code usable once. Only the SHA-256 of a code
//! is stored. Redeeming is one conditional UPDATE (`… WHERE used_by IS NULL`) whose row
//! count decides the winner, with the credit in the same transaction, so concurrent
//! redemptions of one code credit exactly once on SQLite and PostgreSQL alike.

use sqlx::Row;

use super::sql::Sql;

use super::changes::{Change, record};
use super::users::credit_in;
use super::{LedgerKind, Store, StoreError, StoreResult, now_ms};
use crate::ledger::money::Nanos;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedemptionRow {
    pub id: i64,
    pub code_prefix: String,
    pub amount: Nanos,
    pub batch: String,
    pub created_by: Option<i64>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub used_by: Option<i64>,
    pub used_at: Option<i64>,
}

/// What a batch of new codes shares.
#[derive(Clone, Debug)]
pub struct NewCodes<'a> {
    /// (hash, display prefix) per code.
    pub codes: &'a [(String, String)],
    pub amount: Nanos,
    pub batch: &'a str,
    pub created_by: Option<i64>,
    pub expires_at: Option<i64>,
}

/// Why a code did not credit anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RedeemRefusal {
    #[error("this code does not exist")]
    Unknown,
    #[error("this code has already been used")]
    Used,
    #[error("this code has expired")]
    Expired,
}

const COLUMNS: &str =
    "id, code_prefix, amount_nano, batch, created_by, created_at, expires_at, used_by, used_at";

fn from_row(row: &sqlx::any::AnyRow) -> StoreResult<RedemptionRow> {
    Ok(RedemptionRow {
        id: row.try_get("id")?,
        code_prefix: row.try_get("code_prefix")?,
        amount: Nanos(row.try_get("amount_nano")?),
        batch: row.try_get("batch")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        used_by: row.try_get("used_by")?,
        used_at: row.try_get("used_at")?,
    })
}

impl Store {
    pub async fn create_redemption_codes(&self, new: &NewCodes<'_>) -> StoreResult<Vec<i64>> {
        let mut tx = self.begin_write().await?;
        let mut ids = Vec::with_capacity(new.codes.len());
        let now = now_ms();
        for (hash, prefix) in new.codes {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO redemption_codes (code_hash, code_prefix, amount_nano, batch, created_by, created_at, \
                 expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .bind(hash)
            .bind(prefix)
            .bind(new.amount.0)
            .bind(new.batch)
            .bind(new.created_by)
            .bind(now)
            .bind(new.expires_at)
            .fetch_one(&mut *tx)
            .await?;
            ids.push(id);
        }
        tx.commit().await?;
        Ok(ids)
    }

    /// Credits `user_id` with the code's amount if the code is unused and unexpired.
    /// Returns the amount, or why nothing was credited.
    pub async fn redeem_code(
        &self,
        code_hash: &str,
        user_id: i64,
    ) -> StoreResult<Result<Nanos, RedeemRefusal>> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let claimed = sqlx::query(
            "UPDATE redemption_codes SET used_by = $1, used_at = $2 \
             WHERE code_hash = $3 AND used_by IS NULL AND (expires_at IS NULL OR expires_at > $4)",
        )
        .bind(user_id)
        .bind(now)
        .bind(code_hash)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM redemption_codes WHERE code_hash = $1"
        ))
        .bind(code_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(code) = row.as_ref().map(from_row).transpose()? else {
            return Ok(Err(RedeemRefusal::Unknown));
        };
        if claimed.rows_affected() != 1 {
            // Nothing changed; the transaction is simply dropped (rolled back).
            return Ok(Err(if code.used_by.is_some() {
                RedeemRefusal::Used
            } else {
                RedeemRefusal::Expired
            }));
        }
        let reason = format!("redemption code {}", code.code_prefix);
        credit_in(
            &mut tx,
            user_id,
            code.amount,
            LedgerKind::Redemption,
            &reason,
        )
        .await?;
        record(&mut tx, Change::Balance(user_id)).await?;
        tx.commit().await?;
        Ok(Ok(code.amount))
    }

    /// Codes newest first; `used` filters on whether a code was redeemed.
    pub async fn redemption_codes(
        &self,
        used: Option<bool>,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Vec<RedemptionRow>> {
        let mut query = Sql::new(format!("SELECT {COLUMNS} FROM redemption_codes"));
        match used {
            Some(true) => query.push(" WHERE used_by IS NOT NULL"),
            Some(false) => query.push(" WHERE used_by IS NULL"),
            None => &mut query,
        };
        query
            .push(" ORDER BY id DESC LIMIT ")
            .bind(limit)
            .push(" OFFSET ")
            .bind(offset);
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(from_row).collect()
    }

    pub async fn redemption_codes_by_id(&self, ids: &[i64]) -> StoreResult<Vec<RedemptionRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = Sql::new(format!(
            "SELECT {COLUMNS} FROM redemption_codes WHERE id IN ("
        ));
        for (i, id) in ids.iter().enumerate() {
            if i > 0 {
                query.push(", ");
            }
            query.bind(*id);
        }
        query.push(") ORDER BY id");
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(from_row).collect()
    }

    /// Deletes an unused code (a used one is history and stays).
    pub async fn delete_unused_code(&self, id: i64) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query("DELETE FROM redemption_codes WHERE id = $1 AND used_by IS NULL")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("no unused code with id {id}")));
        }
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::temp_store;

    #[tokio::test]
    async fn a_code_credits_once_and_expired_or_unknown_codes_credit_nothing() {
        let (store, _dir) = temp_store().await;
        let user = store
            .create_user("u", "user", None, Nanos::ZERO)
            .await
            .unwrap();
        let codes = [
            ("live".to_string(), "p1".to_string()),
            ("old".to_string(), "p2".to_string()),
        ];
        let mut new = NewCodes {
            codes: &codes[..1],
            amount: Nanos(7),
            batch: "b",
            created_by: None,
            expires_at: None,
        };
        store.create_redemption_codes(&new).await.unwrap();
        new.codes = &codes[1..];
        new.expires_at = Some(1);
        store.create_redemption_codes(&new).await.unwrap();

        assert_eq!(
            store.redeem_code("live", user.id).await.unwrap(),
            Ok(Nanos(7))
        );
        assert_eq!(
            store.redeem_code("live", user.id).await.unwrap(),
            Err(RedeemRefusal::Used)
        );
        assert_eq!(
            store.redeem_code("old", user.id).await.unwrap(),
            Err(RedeemRefusal::Expired)
        );
        assert_eq!(
            store.redeem_code("nope", user.id).await.unwrap(),
            Err(RedeemRefusal::Unknown)
        );
        let user = store.user_by_id(user.id).await.unwrap().unwrap();
        assert_eq!(user.balance, Nanos(7));
        assert_eq!(store.recomputed_balance(user.id).await.unwrap(), Nanos(7));
        let used = store.redemption_codes(Some(true), 10, 0).await.unwrap();
        assert_eq!((used.len(), used[0].used_by), (1, Some(user.id)));
        assert!(store.delete_unused_code(used[0].id).await.is_err());
    }
}
