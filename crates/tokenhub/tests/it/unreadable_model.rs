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

/// The management API lists a row it cannot read with the reason, refuses to show it as a
/// model, and lets an admin replace it (PUT, after which it is served) or delete it.
#[tokio::test]
async fn an_unreadable_model_row_is_listed_and_repaired_or_removed_through_the_api() {
    use reqwest::{Method, StatusCode};
    use serde_json::{Value, json};
    for backend in backends() {
        let h = Harness::start(backend).await;
        let (_, key) = h
            .user_with_key("ada", Nanos::from_usd(1), KeyOptions::default())
            .await;
        let pool = AnyPool::connect(&h.database_url).await.unwrap();
        sqlx::query(
            "UPDATE models SET price_tiers = '[{\"name\": 7' \
             WHERE id IN ('alias-model', 'mock-free')",
        )
        .execute(&pool)
        .await
        .unwrap();
        let root = h.root_session().await;
        let list = || h.call_as(&root, Method::GET, "/api/admin/models", None);
        let ids = |list: &Value, member: &str, field: &str| -> Vec<String> {
            list[member]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m[field].as_str().unwrap().to_string())
                .collect()
        };

        let (status, listed) = list().await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {listed}");
        assert_eq!(
            ids(&listed, "unreadable", "model"),
            ["alias-model", "mock-free"],
            "{backend:?}"
        );
        assert!(
            !listed["unreadable"][0]["error"]
                .as_str()
                .unwrap()
                .is_empty(),
            "{listed}"
        );
        assert!(!ids(&listed, "data", "id").contains(&"alias-model".to_string()));
        let (status, error) = h
            .call_as(&root, Method::GET, "/api/admin/models/alias-model", None)
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{error}");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("PUT replaces it"),
            "{error}"
        );

        let repaired = json!({"id": "alias-model", "provider": "mock",
            "input_usd_per_mtok": "1", "output_usd_per_mtok": "2"});
        let (status, view) = h
            .call_as(
                &root,
                Method::PUT,
                "/api/admin/models/alias-model",
                Some(repaired),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {view}");
        assert_eq!(view["input_usd_per_mtok"], "1");
        let (status, _) = h
            .call_as(&root, Method::DELETE, "/api/admin/models/mock-free", None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{backend:?}");

        let (_, listed) = list().await;
        assert!(ids(&listed, "unreadable", "model").is_empty(), "{listed}");
        let served = ids(&listed, "data", "id");
        assert!(served.contains(&"alias-model".to_string()), "{backend:?}");
        assert!(!served.contains(&"mock-free".to_string()), "{backend:?}");
        h.reload().await;
        assert_eq!(
            chat_status(&h, &h.base, &key, "alias-model").await,
            200,
            "{backend:?}: served again"
        );
        let removed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM models WHERE id = 'mock-free'")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(removed, 0, "{backend:?}");
        pool.close().await;
        h.shutdown().await;
    }
}
