//! Email verification at sign-up (migration 0023): accounts whose address awaits
//! confirmation (`users.verification_pending_since`) and the mailed links that confirm
//! it, stored as SHA-256 like password resets. Confirming credits the trial then, not at
//! sign-up, so unconfirmed accounts never hold trial credit.

use super::changes::{Change, record};
use super::email::check_email_free_in;
use super::links::{MailedLink, take_link_in};
use super::users::{Credit, UserRow, credit_in, insert_user_in};
use super::{Store, StoreError, StoreResult, now_ms};

impl Store {
    /// Creates a `user` account with a password and the address it must confirm; no
    /// credit until it does.
    pub async fn create_unverified_user(
        &self,
        name: &str,
        password_hash: &str,
        email: &str,
    ) -> StoreResult<UserRow> {
        let email = email.to_lowercase();
        let mut tx = self.begin_write().await?;
        let id = insert_user_in(&mut tx, name, "user", Some(password_hash)).await?;
        check_email_free_in(&mut tx, &email, id).await?;
        sqlx::query("UPDATE users SET email = $1, verification_pending_since = $2 WHERE id = $3")
            .bind(&email)
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        record(&mut tx, Change::User(id)).await?;
        tx.commit().await?;
        self.user_by_id(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user '{name}'")))
    }

    /// Whether the user signed up under verification and has not confirmed yet.
    pub async fn verification_pending(&self, user_id: i64) -> StoreResult<bool> {
        let since: Option<Option<i64>> =
            sqlx::query_scalar("SELECT verification_pending_since FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(since.flatten().is_some())
    }

    /// When the user's latest confirmation link was created (what resending is throttled on).
    pub async fn last_email_verification_at(&self, user_id: i64) -> StoreResult<Option<i64>> {
        let latest: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(created_at) FROM email_verifications WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(latest)
    }

    /// Uses up a confirmation link: the user it was sent to, once, before it expires. The
    /// first confirmation of an account clears its pending state and credits `trial`
    /// (when non-zero) in the same transaction, so the trial is credited once.
    pub async fn confirm_email_verification(
        &self,
        token_hash: &str,
        trial: Credit<'_>,
    ) -> StoreResult<Option<i64>> {
        let mut tx = self.begin_write().await?;
        let Some(user_id) =
            take_link_in(&mut tx, MailedLink::AddressConfirmation, token_hash).await?
        else {
            return Ok(None);
        };
        let confirmed = sqlx::query(
            "UPDATE users SET verification_pending_since = NULL \
             WHERE id = $1 AND verification_pending_since IS NOT NULL AND status = 'active'",
        )
        .bind(user_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if confirmed == 1 && !trial.amount.is_zero() {
            credit_in(&mut tx, user_id, trial.amount, trial.kind, trial.reason).await?;
            record(&mut tx, Change::Balance(user_id)).await?;
        }
        tx.commit().await?;
        Ok(Some(user_id))
    }
}

#[cfg(test)]
mod tests {
    use crate::ledger::money::Nanos;
    use crate::store::test_support::temp_store;
    use crate::store::{Credit, LedgerKind, MailedLink, now_ms};

    fn trial() -> Credit<'static> {
        Credit {
            amount: Nanos::from_usd(1),
            kind: LedgerKind::Trial,
            reason: "sign-up trial credit",
        }
    }

    #[tokio::test]
    async fn confirming_clears_the_pending_state_and_credits_the_trial_once() {
        let (store, _dir) = temp_store().await;
        let eve = store
            .create_unverified_user("eve", "hash", "Eve@Example.com")
            .await
            .unwrap();
        assert_eq!(eve.balance, Nanos::ZERO);
        assert!(store.verification_pending(eve.id).await.unwrap());
        assert_eq!(
            store.user_email(eve.id).await.unwrap().as_deref(),
            Some("eve@example.com")
        );
        for token in ["first", "second"] {
            store
                .create_link(
                    MailedLink::AddressConfirmation,
                    token,
                    eve.id,
                    now_ms() + 60_000,
                )
                .await
                .unwrap();
        }
        assert!(
            store
                .last_email_verification_at(eve.id)
                .await
                .unwrap()
                .is_some()
        );
        for token in ["first", "second"] {
            let confirmed = store.confirm_email_verification(token, trial()).await;
            assert_eq!(confirmed.unwrap(), Some(eve.id), "{token}");
        }
        assert_eq!(
            store
                .confirm_email_verification("first", trial())
                .await
                .unwrap(),
            None,
            "a link works once"
        );
        assert!(!store.verification_pending(eve.id).await.unwrap());
        assert_eq!(
            store.user_by_id(eve.id).await.unwrap().unwrap().balance,
            Nanos::from_usd(1),
            "two links, one trial"
        );
        assert_eq!(
            store.recomputed_balance(eve.id).await.unwrap(),
            Nanos::from_usd(1)
        );
    }

    #[tokio::test]
    async fn an_address_in_use_refuses_the_sign_up_and_expired_links_do_not_confirm() {
        let (store, _dir) = temp_store().await;
        let ada = store
            .create_unverified_user("ada", "hash", "ada@example.com")
            .await
            .unwrap();
        assert!(
            store
                .create_unverified_user("bob", "hash", "ADA@example.com")
                .await
                .is_err()
        );
        assert!(
            store.user_by_name("bob").await.unwrap().is_none(),
            "rolled back"
        );
        store
            .create_link(MailedLink::AddressConfirmation, "old", ada.id, now_ms() - 1)
            .await
            .unwrap();
        assert_eq!(
            store
                .confirm_email_verification("old", trial())
                .await
                .unwrap(),
            None
        );
        assert!(store.verification_pending(ada.id).await.unwrap());
    }
}
