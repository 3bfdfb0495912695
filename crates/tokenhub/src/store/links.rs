//! Single-use links mailed to a user (password resets, migration 0017; address
//! confirmations, migration 0023): stored as the SHA-256 of their token, taken once
//! before they expire, and purged once used or expired whenever a new one is stored, so
//! neither table grows with the links ever sent.

use super::{Store, StoreResult, now_ms};

/// Which mailed link a token belongs to; each kind has its own table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailedLink {
    PasswordReset,
    AddressConfirmation,
}

impl MailedLink {
    pub const ALL: [MailedLink; 2] = [MailedLink::PasswordReset, MailedLink::AddressConfirmation];

    fn table(self) -> &'static str {
        match self {
            MailedLink::PasswordReset => "password_resets",
            MailedLink::AddressConfirmation => "email_verifications",
        }
    }
}

impl Store {
    /// Stores a link's token hash for `user_id` until `expires_at` (Unix ms), purging
    /// spent links of every kind first.
    pub async fn create_link(
        &self,
        kind: MailedLink,
        token_hash: &str,
        user_id: i64,
        expires_at: i64,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        purge_spent_links_in(&mut tx).await?;
        let mut insert = sqlx::query(match kind {
            MailedLink::PasswordReset => {
                "INSERT INTO password_resets (token_hash, user_id, expires_at) VALUES ($1, $2, $3)"
            }
            MailedLink::AddressConfirmation => {
                "INSERT INTO email_verifications (token_hash, user_id, expires_at, created_at) \
                 VALUES ($1, $2, $3, $4)"
            }
        })
        .bind(token_hash)
        .bind(user_id)
        .bind(expires_at);
        // Resending a confirmation is throttled on when the last one was made; resets
        // predate creation times (0017) and need none.
        if kind == MailedLink::AddressConfirmation {
            insert = insert.bind(now_ms());
        }
        insert.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Uses up a link: the user it was issued to, once, before it expires.
    pub async fn take_link(&self, kind: MailedLink, token_hash: &str) -> StoreResult<Option<i64>> {
        let mut tx = self.begin_write().await?;
        let user = take_link_in(&mut tx, kind, token_hash).await?;
        tx.commit().await?;
        Ok(user)
    }
}

/// Marks the link used inside `tx` and returns its user, or `None` when it is unknown,
/// used or expired.
pub(super) async fn take_link_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    kind: MailedLink,
    token_hash: &str,
) -> StoreResult<Option<i64>> {
    let sql = format!(
        "UPDATE {} SET used_at = $1 \
         WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING user_id",
        kind.table()
    );
    Ok(sqlx::query_scalar(&sql)
        .bind(now_ms())
        .bind(token_hash)
        .fetch_optional(&mut **tx)
        .await?)
}

async fn purge_spent_links_in(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> StoreResult<()> {
    let now = now_ms();
    for kind in MailedLink::ALL {
        let sql = format!(
            "DELETE FROM {} WHERE used_at IS NOT NULL OR expires_at <= $1",
            kind.table()
        );
        sqlx::query(&sql).bind(now).execute(&mut **tx).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::MailedLink;
    use crate::ledger::money::Nanos;
    use crate::store::test_support::temp_store;
    use crate::store::{Store, now_ms};

    async fn rows(store: &Store, kind: MailedLink) -> i64 {
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {}", kind.table()))
            .fetch_one(&store.pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_link_of_either_kind_works_once_and_not_after_it_expires() {
        let (store, _dir) = temp_store().await;
        let user = store
            .create_user("u", "user", None, Nanos::ZERO)
            .await
            .unwrap();
        for kind in MailedLink::ALL {
            store
                .create_link(kind, "live", user.id, now_ms() + 60_000)
                .await
                .unwrap();
            store
                .create_link(kind, "expired", user.id, now_ms() - 1)
                .await
                .unwrap();
            assert_eq!(
                store.take_link(kind, "live").await.unwrap(),
                Some(user.id),
                "{kind:?}"
            );
            assert_eq!(store.take_link(kind, "live").await.unwrap(), None, "once");
            assert_eq!(store.take_link(kind, "expired").await.unwrap(), None);
            assert_eq!(store.take_link(kind, "unknown").await.unwrap(), None);
        }
    }

    #[tokio::test]
    async fn a_token_of_one_kind_is_not_a_link_of_the_other() {
        let (store, _dir) = temp_store().await;
        let user = store
            .create_user("u", "user", None, Nanos::ZERO)
            .await
            .unwrap();
        store
            .create_link(
                MailedLink::PasswordReset,
                "reset",
                user.id,
                now_ms() + 60_000,
            )
            .await
            .unwrap();
        let taken = store.take_link(MailedLink::AddressConfirmation, "reset");
        assert_eq!(taken.await.unwrap(), None);
        let taken = store.take_link(MailedLink::PasswordReset, "reset");
        assert_eq!(taken.await.unwrap(), Some(user.id));
    }

    #[tokio::test]
    async fn storing_a_link_purges_used_and_expired_ones_of_every_kind() {
        let (store, _dir) = temp_store().await;
        let ada = store
            .create_user("ada", "user", None, Nanos::ZERO)
            .await
            .unwrap();
        for kind in MailedLink::ALL {
            store
                .create_link(kind, "expired", ada.id, now_ms() - 1)
                .await
                .unwrap();
            store
                .create_link(kind, "used", ada.id, now_ms() + 60_000)
                .await
                .unwrap();
            store.take_link(kind, "used").await.unwrap();
        }
        store
            .create_link(MailedLink::PasswordReset, "live", ada.id, now_ms() + 60_000)
            .await
            .unwrap();
        assert_eq!(
            rows(&store, MailedLink::PasswordReset).await,
            1,
            "only the live reset"
        );
        assert_eq!(
            rows(&store, MailedLink::AddressConfirmation).await,
            0,
            "used and expired confirmations"
        );
    }
}
