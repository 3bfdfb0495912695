//! Per-key and per-user limits: the data the relay's limit phases read from the snapshot.
//! Kept apart from `KeyRow`/`UserRow` so the hot-path rows stay as they are; the reloader
//! joins them in by id.

use std::collections::HashMap;

use sqlx::Row;

use super::changes::{Change, record};
use super::{Store, StoreError, StoreResult};

/// A key's own limits. `None` = no limit of that kind (RPM/TPM then fall back to the
/// owner's defaults).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyLimits {
    /// Client IPs or CIDRs (`10.0.0.0/8`, `2001:db8::1`); `None` = any address.
    pub allowed_ips: Option<Vec<String>>,
    pub rpm: Option<i64>,
    pub tpm: Option<i64>,
}

/// A user's defaults for keys that set no RPM/TPM of their own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserLimits {
    pub rpm: Option<i64>,
    pub tpm: Option<i64>,
}

pub(super) fn key_limits_from_row(row: &sqlx::any::AnyRow) -> StoreResult<KeyLimits> {
    let ips: Option<String> = row.try_get("allowed_ips")?;
    Ok(KeyLimits {
        allowed_ips: ips.and_then(|text| serde_json::from_str(&text).ok()),
        rpm: row.try_get("rpm_limit")?,
        tpm: row.try_get("tpm_limit")?,
    })
}

pub(super) fn ips_json(limits: &KeyLimits) -> Option<String> {
    limits
        .allowed_ips
        .as_ref()
        .map(|ips| serde_json::Value::from(ips.clone()).to_string())
}

impl Store {
    /// Limits of every key that can still authenticate, by key id.
    pub async fn live_key_limits(&self) -> StoreResult<HashMap<i64, KeyLimits>> {
        let rows = sqlx::query(
            "SELECT id, allowed_ips, rpm_limit, tpm_limit FROM api_keys WHERE status <> 'revoked'",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("id")?, key_limits_from_row(row)?)))
            .collect()
    }

    /// Limits of every key of one user, by key id.
    pub async fn key_limits_of_user(&self, user_id: i64) -> StoreResult<HashMap<i64, KeyLimits>> {
        let rows = sqlx::query(
            "SELECT id, allowed_ips, rpm_limit, tpm_limit FROM api_keys WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("id")?, key_limits_from_row(row)?)))
            .collect()
    }

    pub async fn key_limits(&self, key_id: i64) -> StoreResult<KeyLimits> {
        let row =
            sqlx::query("SELECT allowed_ips, rpm_limit, tpm_limit FROM api_keys WHERE id = $1")
                .bind(key_id)
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("no key with id {key_id}")))?;
        key_limits_from_row(&row)
    }

    /// Every user's RPM/TPM defaults, by user id.
    pub async fn user_limits_map(&self) -> StoreResult<HashMap<i64, UserLimits>> {
        let rows = sqlx::query("SELECT id, rpm_limit, tpm_limit FROM users")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let limits = UserLimits {
                    rpm: row.try_get("rpm_limit")?,
                    tpm: row.try_get("tpm_limit")?,
                };
                Ok((row.try_get("id")?, limits))
            })
            .collect()
    }

    pub async fn user_limits(&self, user_id: i64) -> StoreResult<UserLimits> {
        let row = sqlx::query("SELECT rpm_limit, tpm_limit FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no user with id {user_id}")))?;
        Ok(UserLimits {
            rpm: row.try_get("rpm_limit")?,
            tpm: row.try_get("tpm_limit")?,
        })
    }

    pub async fn set_user_limits(&self, user_id: i64, limits: UserLimits) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let updated = sqlx::query("UPDATE users SET rpm_limit = $1, tpm_limit = $2 WHERE id = $3")
            .bind(limits.rpm)
            .bind(limits.tpm)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("no user with id {user_id}")));
        }
        record(&mut tx, Change::User(user_id)).await?;
        tx.commit().await?;
        Ok(())
    }
}
