//! Reads for reconciling the ledger: what every account was credited, what its records
//! cost, and what its balance or spend says. The ledger simulation audits with them
//! (`ledger::simulation`); they read whole tables, so nothing on a request path calls them.

use std::collections::BTreeMap;

use sqlx::Row;

use super::{Store, StoreResult};
use crate::ledger::money::Nanos;

/// One user's money as stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserMoney {
    pub balance: Nanos,
    /// Σ `ledger_entries` (credits, debits, redemptions, opening balance).
    pub credits: Nanos,
    /// Σ cost of the user's usage records.
    pub costs: Nanos,
}

/// One key's spend as stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyMoney {
    pub spent: Nanos,
    /// Σ cost of the key's usage records.
    pub costs: Nanos,
}

/// Every account's money, and how many usage records (and distinct request ids) exist.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MoneyAudit {
    pub users: BTreeMap<i64, UserMoney>,
    pub keys: BTreeMap<i64, KeyMoney>,
    pub records: i64,
    pub distinct_requests: i64,
}

/// A usage record as the audit needs it: which request, whose, what it cost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BilledRecord {
    pub id: i64,
    pub request_id: String,
    pub user_id: i64,
    pub key_id: i64,
    pub cost: Nanos,
}

impl Store {
    pub async fn money_audit(&self) -> StoreResult<MoneyAudit> {
        let mut audit = MoneyAudit::default();
        for (id, balance) in self
            .amounts_by_id("SELECT id, balance_nano AS amount FROM users")
            .await?
        {
            audit.users.entry(id).or_default().balance = balance;
        }
        let credits = "SELECT user_id AS id, CAST(SUM(amount_nano) AS BIGINT) AS amount \
                       FROM ledger_entries GROUP BY user_id";
        for (id, total) in self.amounts_by_id(credits).await? {
            audit.users.entry(id).or_default().credits = total;
        }
        let costs = "SELECT user_id AS id, CAST(SUM(cost_nano) AS BIGINT) AS amount \
                     FROM usage_records GROUP BY user_id";
        for (id, total) in self.amounts_by_id(costs).await? {
            audit.users.entry(id).or_default().costs = total;
        }
        for (id, spent) in self
            .amounts_by_id("SELECT id, spent_nano AS amount FROM api_keys")
            .await?
        {
            audit.keys.entry(id).or_default().spent = spent;
        }
        let key_costs = "SELECT key_id AS id, CAST(SUM(cost_nano) AS BIGINT) AS amount \
                         FROM usage_records GROUP BY key_id";
        for (id, total) in self.amounts_by_id(key_costs).await? {
            audit.keys.entry(id).or_default().costs = total;
        }
        let counts = sqlx::query(
            "SELECT COUNT(*) AS records, COUNT(DISTINCT request_id) AS requests FROM usage_records",
        )
        .fetch_one(&self.pool)
        .await?;
        audit.records = counts.try_get("records")?;
        audit.distinct_requests = counts.try_get("requests")?;
        Ok(audit)
    }

    /// Usage records stored after row `after`, in row order.
    pub async fn billed_after(&self, after: i64) -> StoreResult<Vec<BilledRecord>> {
        let rows = sqlx::query(
            "SELECT id, request_id, user_id, key_id, cost_nano FROM usage_records \
             WHERE id > $1 ORDER BY id",
        )
        .bind(after)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(BilledRecord {
                    id: row.try_get("id")?,
                    request_id: row.try_get("request_id")?,
                    user_id: row.try_get("user_id")?,
                    key_id: row.try_get("key_id")?,
                    cost: Nanos(row.try_get("cost_nano")?),
                })
            })
            .collect()
    }

    /// The `(id, amount)` rows of `sql`, which selects an `id` and an `amount` column.
    async fn amounts_by_id(&self, sql: &str) -> StoreResult<Vec<(i64, Nanos)>> {
        let rows = sqlx::query(sql).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| Ok((row.try_get("id")?, Nanos(row.try_get("amount")?))))
            .collect()
    }

    /// Parked records after row `after`: (row id, request id, why), in row order.
    pub async fn parked_after(&self, after: i64) -> StoreResult<Vec<(i64, String, String)>> {
        let rows = sqlx::query(
            "SELECT id, request_id, error FROM usage_dead_letters WHERE id > $1 ORDER BY id",
        )
        .bind(after)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("id")?,
                    row.try_get("request_id")?,
                    row.try_get("error")?,
                ))
            })
            .collect()
    }
}
