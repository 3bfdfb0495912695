//! Users' email addresses (migration 0017). Addresses are kept lower-cased, so one
//! address belongs to one user whatever its case. The links mailed to them: `links.rs`.

use super::{Store, StoreError, StoreResult};

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

#[cfg(test)]
mod tests {
    use crate::ledger::money::Nanos;
    use crate::store::test_support::temp_store;

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
