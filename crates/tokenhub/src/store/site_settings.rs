//! Operator settings saved from the admin panel, as name/value text pairs. The domain
//! meaning (and the fallback to the configuration file) lives in `accounts::site_settings`.

use std::collections::HashMap;

use sqlx::Row;

use super::{Store, StoreResult, now_ms};

impl Store {
    /// Every saved setting.
    pub async fn site_settings(&self) -> StoreResult<HashMap<String, String>> {
        let rows = sqlx::query("SELECT name, value FROM site_settings")
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|row| Ok((row.try_get("name")?, row.try_get("value")?)))
            .collect()
    }

    /// Saves several settings in one transaction.
    pub async fn put_site_settings(&self, pairs: &[(&str, String)]) -> StoreResult<()> {
        self.put_site_settings_sealed(pairs, None).await
    }

    /// Saves several settings and, sealed like channel keys, one secret (the SMTP
    /// password), in one transaction.
    pub async fn put_site_settings_sealed(
        &self,
        pairs: &[(&str, String)],
        secret: Option<(&str, &str)>,
    ) -> StoreResult<()> {
        let sealed = secret.map(|(name, plain)| (name, self.secrets.seal(plain)));
        let mut tx = self.begin_write().await?;
        let now = now_ms();
        for (name, value) in pairs.iter().chain(sealed.as_ref()) {
            sqlx::query(
                "INSERT INTO site_settings (name, value, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            )
            .bind(*name)
            .bind(value)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A secret saved with `put_site_settings_sealed`, opened.
    pub async fn sealed_site_setting(&self, name: &str) -> StoreResult<Option<String>> {
        let stored: Option<String> =
            sqlx::query_scalar("SELECT value FROM site_settings WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        stored
            .map(|text| {
                self.secrets
                    .open(&text)
                    .map_err(|_| super::sealing::wrong_key(&format!("the setting '{name}'")))
            })
            .transpose()
    }

    /// Deletes saved settings (their configuration values apply again).
    pub async fn delete_site_settings(&self, names: &[&str]) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        for name in names {
            sqlx::query("DELETE FROM site_settings WHERE name = $1")
                .bind(*name)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::store::test_support::temp_store;

    #[tokio::test]
    async fn settings_are_upserted() {
        let (store, _dir) = temp_store().await;
        assert!(store.site_settings().await.unwrap().is_empty());
        store
            .put_site_settings(&[("signup", "closed".into()), ("x", "1".into())])
            .await
            .unwrap();
        store
            .put_site_settings(&[("signup", "open".into())])
            .await
            .unwrap();
        let saved = store.site_settings().await.unwrap();
        assert_eq!(saved["signup"], "open");
        assert_eq!(saved["x"], "1");
    }
}
