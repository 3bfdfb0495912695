//! A model row written straight into the database with `price_tiers` the gateway cannot
//! read: the model is left out, every other one is served, a running gateway still
//! takes catalogue changes, and a restart comes up.

use sqlx::AnyPool;
use tokenhub::accounts::KeyOptions;
use tokenhub::ledger::money::Nanos;
use tokenhub::store::ModelRow;

use crate::harness::*;

async fn chat_status(h: &Harness, base: &str, key: &str, model: &str) -> u16 {
    h.http
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&serde_json::json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_model_row_with_malformed_tiers_is_left_out_and_the_rest_is_served() {
    for backend in backends() {
        let h = Harness::start(backend).await;
        let (_, key) = h
            .user_with_key("ada", Nanos::from_usd(1), KeyOptions::default())
            .await;
        let pool = AnyPool::connect(&h.database_url).await.unwrap();
        sqlx::query("UPDATE models SET price_tiers = '[{\"name\": 7' WHERE id = 'alias-model'")
            .execute(&pool)
            .await
            .unwrap();
        // A catalogue change after it: the running gateway rebuilds its snapshot.
        let store = &h.gateway().store;
        let mut added: ModelRow = store.model_by_id("mock-free").await.unwrap().unwrap();
        added.id = "added-later".into();
        store.upsert_model(&added).await.unwrap();
        let mut channel = store
            .all_channels()
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.name == "mock")
            .unwrap();
        channel.models.push("added-later".into());
        channel
            .model_map
            .insert("added-later".into(), "mock-gpt".into());
        store.upsert_channel(&channel).await.unwrap();
        h.reload().await;

        let ids: Vec<String> = store
            .all_models()
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect();
        assert!(!ids.contains(&"alias-model".to_string()), "{backend:?}");
        assert_eq!(chat_status(&h, &h.base, &key, "mock-gpt").await, 200);
        assert_eq!(
            chat_status(&h, &h.base, &key, "added-later").await,
            200,
            "{backend:?}: the change was taken"
        );
        assert_eq!(chat_status(&h, &h.base, &key, "alias-model").await, 404);

        // A restart on the same database comes up and serves the readable models.
        let restarted = h.start_another(|_, _| {}).await;
        let base = format!("http://{}", restarted.addr);
        assert_eq!(
            chat_status(&h, &base, &key, "mock-gpt").await,
            200,
            "{backend:?}"
        );
        restarted.shutdown().await.unwrap();
        h.shutdown().await;
    }
}
