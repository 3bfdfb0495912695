//! The reads behind the gateway's key cache: one key with its owner by hash (a cache
//! miss), one user by id, and the money of the users and keys a gateway holds.

use std::collections::HashMap;

use sqlx::Row;

use super::keys::{KEY_COLUMNS_OF_K, key_from_row};
use super::limits::key_limits_from_row;
use super::sql::Sql;
use super::{KeyLimits, KeyRow, Store, StoreResult, UserLimits, UserRow};
use crate::ledger::money::Nanos;

/// A key with everything authentication needs: its limits, its owner and the owner's
/// default limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyAuth {
    pub key: KeyRow,
    pub limits: KeyLimits,
    pub owner: UserAuth,
}

/// A user with its default limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserAuth {
    pub user: UserRow,
    pub limits: UserLimits,
}

const OWNER_COLUMNS: &str = "u.name AS owner_name, u.role AS owner_role, u.status AS owner_status, \
     u.balance_nano AS owner_balance, u.rpm_limit AS owner_rpm, u.tpm_limit AS owner_tpm";

fn owner_from_row(row: &sqlx::any::AnyRow, id: i64) -> StoreResult<UserAuth> {
    Ok(UserAuth {
        user: UserRow {
            id,
            name: row.try_get("owner_name")?,
            role: row.try_get("owner_role")?,
            status: row.try_get("owner_status")?,
            balance: Nanos(row.try_get("owner_balance")?),
        },
        limits: UserLimits {
            rpm: row.try_get("owner_rpm")?,
            tpm: row.try_get("owner_tpm")?,
        },
    })
}

/// Ids per `IN (…)` list: far below every backend's parameter limit.
const IDS_PER_QUERY: usize = 500;

impl Store {
    /// The key with this hash and its owner, in one indexed read (`key_hash` is unique).
    pub async fn key_auth(&self, key_hash: &str) -> StoreResult<Option<KeyAuth>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS_OF_K}, k.allowed_ips, k.rpm_limit, k.tpm_limit, {OWNER_COLUMNS} \
             FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = $1"
        );
        let row = sqlx::query(&sql)
            .bind(key_hash)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let key = key_from_row(&row)?;
        let owner = owner_from_row(&row, key.user_id)?;
        Ok(Some(KeyAuth {
            limits: key_limits_from_row(&row)?,
            key,
            owner,
        }))
    }

    /// A key's hash by id (keys are never deleted, only revoked).
    pub async fn key_hash_of(&self, key_id: i64) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT key_hash FROM api_keys WHERE id = $1")
                .bind(key_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn user_auth(&self, user_id: i64) -> StoreResult<Option<UserAuth>> {
        let sql = format!("SELECT {OWNER_COLUMNS} FROM users u WHERE u.id = $1");
        let row = sqlx::query(&sql)
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| owner_from_row(&row, user_id)).transpose()
    }

    /// Stored balances of these users.
    pub async fn balances_of(&self, user_ids: &[i64]) -> StoreResult<HashMap<i64, Nanos>> {
        self.amounts_of(
            "SELECT id, balance_nano AS amount FROM users WHERE id IN (",
            user_ids,
        )
        .await
    }

    /// Stored spends of these keys.
    pub async fn spends_of(&self, key_ids: &[i64]) -> StoreResult<HashMap<i64, Nanos>> {
        self.amounts_of(
            "SELECT id, spent_nano AS amount FROM api_keys WHERE id IN (",
            key_ids,
        )
        .await
    }

    async fn amounts_of(&self, select: &str, ids: &[i64]) -> StoreResult<HashMap<i64, Nanos>> {
        let mut amounts = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let mut sql = Sql::new(select);
            for (position, id) in chunk.iter().enumerate() {
                if position > 0 {
                    sql.push(", ");
                }
                sql.bind(*id);
            }
            sql.push(")");
            for row in sql.fetch_all(&self.pool).await? {
                amounts.insert(row.try_get("id")?, Nanos(row.try_get("amount")?));
            }
        }
        Ok(amounts)
    }
}

#[cfg(test)]
mod tests {
    use crate::ledger::money::Nanos;
    use crate::store::test_support::temp_store;
    use crate::store::{KeyLimits, NewKey, UserLimits};

    #[tokio::test]
    async fn a_key_is_read_with_its_owner_and_money_by_ids() {
        let (store, _dir) = temp_store().await;
        let user = store
            .create_user("u", "user", None, Nanos(500))
            .await
            .unwrap();
        store
            .set_user_limits(
                user.id,
                UserLimits {
                    rpm: Some(7),
                    tpm: None,
                },
            )
            .await
            .unwrap();
        let key = store
            .create_key(&NewKey {
                user_id: user.id,
                key_hash: "h".into(),
                limits: KeyLimits {
                    tpm: Some(9),
                    ..KeyLimits::default()
                },
                ..NewKey::default()
            })
            .await
            .unwrap();
        let auth = store.key_auth("h").await.unwrap().unwrap();
        assert_eq!(auth.key, key);
        assert_eq!(auth.limits.tpm, Some(9));
        assert_eq!(auth.owner.user, user);
        assert_eq!(auth.owner.limits.rpm, Some(7));
        assert!(store.key_auth("other").await.unwrap().is_none());
        assert_eq!(
            store.key_hash_of(key.id).await.unwrap().as_deref(),
            Some("h")
        );
        assert_eq!(
            store
                .user_auth(user.id)
                .await
                .unwrap()
                .unwrap()
                .user
                .balance,
            Nanos(500)
        );
        let balances = store.balances_of(&[user.id, 999]).await.unwrap();
        assert_eq!(balances.len(), 1);
        assert_eq!(balances[&user.id], Nanos(500));
        assert_eq!(store.spends_of(&[key.id]).await.unwrap()[&key.id], Nanos(0));
    }
}
