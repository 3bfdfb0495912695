//! User administration: search, role/status changes, passwords and deletion.
//! Deletion keeps the row (usage history and the ledger refer to it): the user is marked
//! `deleted`, its keys revoked, its sessions and admin tokens ended, in one transaction.

use sqlx::Row;

use super::sql::Sql;

use super::changes::{Change, record};
use super::limits::UserLimits;
use super::users::UserRow;
use super::{Store, StoreError, StoreResult};
use crate::ledger::money::Nanos;

/// A user with what the management API shows besides the hot-path fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserDetail {
    pub user: UserRow,
    pub limits: UserLimits,
    pub created_at: i64,
}

const DETAIL_COLUMNS: &str =
    "id, name, role, status, balance_nano, rpm_limit, tpm_limit, created_at";

fn detail_from_row(row: &sqlx::any::AnyRow) -> StoreResult<UserDetail> {
    Ok(UserDetail {
        user: UserRow {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            role: row.try_get("role")?,
            status: row.try_get("status")?,
            balance: Nanos(row.try_get("balance_nano")?),
        },
        limits: UserLimits {
            rpm: row.try_get("rpm_limit")?,
            tpm: row.try_get("tpm_limit")?,
        },
        created_at: row.try_get("created_at")?,
    })
}

/// Which users a listing returns.
#[derive(Clone, Debug, Default)]
pub struct UserQuery {
    /// Substring of the name, case-insensitive.
    pub search: Option<String>,
    pub role: Option<String>,
    pub status: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

fn push_user_filters(builder: &mut Sql<'_>, query: &UserQuery) {
    builder.push(" WHERE 1 = 1");
    if let Some(search) = &query.search {
        builder
            .push(" AND LOWER(name) LIKE ")
            .bind(format!("%{}%", search.to_lowercase()));
    }
    if let Some(role) = &query.role {
        builder.push(" AND role = ").bind(role.clone());
    }
    if let Some(status) = &query.status {
        builder.push(" AND status = ").bind(status.clone());
    }
}

impl Store {
    pub async fn user_detail(&self, id: i64) -> StoreResult<Option<UserDetail>> {
        let row = sqlx::query(&format!("SELECT {DETAIL_COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(detail_from_row).transpose()
    }

    /// One page of users (by id) and the total matching the filters.
    pub async fn search_users(&self, query: &UserQuery) -> StoreResult<(Vec<UserDetail>, i64)> {
        let mut count = Sql::new("SELECT COUNT(*) FROM users");
        push_user_filters(&mut count, query);
        let total = count.fetch_i64(&self.pool).await?;
        let mut select = Sql::new(format!("SELECT {DETAIL_COLUMNS} FROM users"));
        push_user_filters(&mut select, query);
        select
            .push(" ORDER BY id LIMIT ")
            .bind(query.limit)
            .push(" OFFSET ")
            .bind(query.offset);
        let rows = select.fetch_all(&self.pool).await?;
        let users = rows
            .iter()
            .map(detail_from_row)
            .collect::<StoreResult<_>>()?;
        Ok((users, total))
    }

    /// The stored argon2id hash of a user's password, if the user has one.
    pub async fn password_hash(&self, user_id: i64) -> StoreResult<Option<String>> {
        let hash: Option<Option<String>> =
            sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(hash.flatten())
    }

    pub async fn set_password_hash(&self, user_id: i64, hash: &str) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let updated = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(hash)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("no user with id {user_id}")));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Sets role and status; a user who is no longer active loses its sessions at once.
    pub async fn set_user_role_status(
        &self,
        user_id: i64,
        role: &str,
        status: &str,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let updated = sqlx::query("UPDATE users SET role = $1, status = $2 WHERE id = $3")
            .bind(role)
            .bind(status)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("no user with id {user_id}")));
        }
        if status != "active" {
            end_sessions_in(&mut tx, user_id).await?;
        }
        record(&mut tx, Change::User(user_id)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks a user deleted, revokes its keys and admin tokens, ends its sessions.
    pub async fn delete_user(&self, user_id: i64) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let updated = sqlx::query("UPDATE users SET status = 'deleted' WHERE id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("no user with id {user_id}")));
        }
        sqlx::query("UPDATE api_keys SET status = 'revoked' WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        end_sessions_in(&mut tx, user_id).await?;
        record(&mut tx, Change::User(user_id)).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn count_users_with_role(&self, role: &str) -> StoreResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = $1 AND status = 'active'")
                .bind(role)
                .fetch_one(&self.pool)
                .await?,
        )
    }
}

async fn end_sessions_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: i64,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE admin_tokens SET status = 'revoked' WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
