//! Fallback models: when every channel of a model fails, the relay tries these models in
//! order (e.g. `gpt-4o` → `deepseek-chat`), billing whichever answered at its own price.

use std::collections::HashMap;

use sqlx::Row;

use super::changes::{Change, record};
use super::{Store, StoreResult};

impl Store {
    /// Replaces a model's fallback list.
    pub async fn set_fallbacks(&self, model_id: &str, fallbacks: &[String]) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM model_fallbacks WHERE model_id = $1")
            .bind(model_id)
            .execute(&mut *tx)
            .await?;
        for (position, fallback) in fallbacks.iter().enumerate() {
            sqlx::query(
                "INSERT INTO model_fallbacks (model_id, position, fallback_id) VALUES ($1, $2, $3)",
            )
            .bind(model_id)
            .bind(position as i64)
            .bind(fallback)
            .execute(&mut *tx)
            .await?;
        }
        record(&mut tx, Change::Catalog).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every model's fallbacks, in order.
    pub async fn all_fallbacks(&self) -> StoreResult<HashMap<String, Vec<String>>> {
        let rows = sqlx::query(
            "SELECT model_id, fallback_id FROM model_fallbacks ORDER BY model_id, position",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut fallbacks: HashMap<String, Vec<String>> = HashMap::new();
        for row in rows {
            fallbacks
                .entry(row.try_get("model_id")?)
                .or_default()
                .push(row.try_get("fallback_id")?);
        }
        Ok(fallbacks)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::test_support::temp_store;

    #[tokio::test]
    async fn fallback_lists_are_replaced_whole_and_keep_their_order() {
        let (store, _dir) = temp_store().await;
        store
            .set_fallbacks("a", &["b".into(), "c".into()])
            .await
            .unwrap();
        store
            .set_fallbacks("a", &["c".into(), "b".into()])
            .await
            .unwrap();
        store.set_fallbacks("x", &[]).await.unwrap();
        let all = store.all_fallbacks().await.unwrap();
        assert_eq!(all["a"], ["c", "b"]);
        assert!(!all.contains_key("x"));
    }
}
