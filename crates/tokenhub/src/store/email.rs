//! Users' email addresses and password reset tokens (migration 0017). Addresses are kept
//! lower-cased, so one address belongs to one user whatever its case.

use super::{Store, StoreError, StoreResult, now_ms};

impl Store {
    pub async fn user_email(&self, user_id: i64) -> StoreResult<Option<String>> {
        let email: Option<Option<String>> =
            sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(email.flatten())
    }

    /// Sets (or with `None` removes) a user's address; another user's is a conflict.
    pub async fn set_user_email(&self, user_id: i64, email: Option<&str>) -> StoreResult<()> {
        let email = email.map(str::to_lowercase);
        let mut tx = self.begin_write().await?;
        if let Some(address) = &email {
            check_email_free_in(&mut tx, address, user_id).await?;
        }
        sqlx::query("UPDATE users SET email = $1 WHERE id = $2")
            .bind(email)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The active user with this address, if any.
    pub async fn active_user_by_email(&self, email: &str) -> StoreResult<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM users WHERE email = $1 AND status = 'active' AND name NOT LIKE '~%'",
        )
        .bind(email.to_lowercase())
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn create_password_reset(
        &self,
        token_hash: &str,
        user_id: i64,
        expires_at: i64,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        purge_spent_links_in(&mut tx).await?;
        sqlx::query(
            "INSERT INTO password_resets (token_hash, user_id, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Uses up a reset token: the user it was issued to, once, before it expires.
    pub async fn take_password_reset(&self, token_hash: &str) -> StoreResult<Option<i64>> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let user: Option<i64> = sqlx::query_scalar(
            "UPDATE password_resets SET used_at = $1 \
             WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING user_id",
        )
        .bind(now)
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(user)
    }
}

/// Refuses an address another user (than `user_id`) has.
pub(super) async fn check_email_free_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    address: &str,
    user_id: i64,
) -> StoreResult<()> {
    let owner: Option<i64> =
        sqlx::query_scalar("SELECT id FROM users WHERE email = $1 AND id <> $2")
            .bind(address)
            .bind(user_id)
            .fetch_optional(&mut **tx)
            .await?;
    match owner {
        Some(_) => Err(StoreError::Conflict(
            "another account uses this email address".into(),
        )),
        None => Ok(()),
    }
}

/// Deletes used and expired mailed links (password resets and address confirmations)
/// whenever a new one is stored, so neither table grows with the links ever sent.
pub(super) async fn purge_spent_links_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
) -> StoreResult<()> {
    let now = now_ms();
    sqlx::query("DELETE FROM password_resets WHERE used_at IS NOT NULL OR expires_at <= $1")
        .bind(now)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM email_verifications WHERE used_at IS NOT NULL OR expires_at <= $1")
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::ledger::money::Nanos;
    use crate::store::now_ms;
    use crate::store::test_support::temp_store;

    #[tokio::test]
    async fn a_reset_token_works_once_and_not_after_it_expires() {
        let (store, _dir) = temp_store().await;
        let user = store
            .create_user("u", "user", None, Nanos::ZERO)
            .await
            .unwrap();
        store
            .create_password_reset("live", user.id, now_ms() + 60_000)
            .await
            .unwrap();
        store
            .create_password_reset("expired", user.id, now_ms() - 1)
            .await
            .unwrap();
        assert_eq!(
            store.take_password_reset("live").await.unwrap(),
            Some(user.id)
        );
        assert_eq!(
            store.take_password_reset("live").await.unwrap(),
            None,
            "once"
        );
        assert_eq!(store.take_password_reset("expired").await.unwrap(), None);
        assert_eq!(store.take_password_reset("unknown").await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_address_belongs_to_one_active_user_whatever_its_case() {
        let (store, _dir) = temp_store().await;
        let ada = store
            .create_user("ada", "user", None, Nanos::ZERO)
            .await
            .unwrap();
        let bob = store
            .create_user("bob", "user", None, Nanos::ZERO)
            .await
            .unwrap();
        store
            .set_user_email(ada.id, Some("Ada@Example.com"))
            .await
            .unwrap();
        assert_eq!(
            store.active_user_by_email("ADA@example.COM").await.unwrap(),
            Some(ada.id)
        );
        assert!(
            store
                .set_user_email(bob.id, Some("ada@example.com"))
                .await
                .is_err()
        );
        store.set_user_email(ada.id, None).await.unwrap();
        assert_eq!(
            store.active_user_by_email("ada@example.com").await.unwrap(),
            None
        );
    }
}
