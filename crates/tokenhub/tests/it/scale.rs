//! State at scale (issue 13): keys looked up on a miss, the change feed across instances,
//! the negative cache, the lookup budget, eviction, and config seeding that leaves admin
//! edits alone.

use std::time::{Duration, Instant};

use crate::harness::*;
use serde_json::{Value, json};
use tokenhub::accounts::{self, KeyOptions, api_key};
use tokenhub::ledger::money::Nanos;
use tokenhub::server;
use tokenhub::store::{LedgerKind, NewKey, Store};

fn hello() -> Value {
    json!({"model": "mock-gpt", "messages": user_says("hi")})
}

async fn chat_at(h: &Harness, base: &str, key: &str) -> reqwest::Response {
    h.http
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&hello())
        .send()
        .await
        .expect("gateway answers")
}

/// A user with `keys` keys, created through a store handle of its own (as the CLI in
/// another process would), so no gateway is nudged.
async fn elsewhere(h: &Harness, name: &str, keys: usize) -> (Store, Vec<(i64, String)>) {
    let store = Store::connect(&h.database_url, h.secret_key.as_ref())
        .await
        .expect("second handle");
    let user = accounts::create_user(&store, name, "user", Nanos::from_usd(1))
        .await
        .expect("user");
    let mut issued = Vec::new();
    for _ in 0..keys {
        let (row, secret) = accounts::issue_key(&store, &user, KeyOptions::default())
            .await
            .expect("key");
        issued.push((row.id, secret));
    }
    (store, issued)
}

#[tokio::test]
async fn a_key_created_by_another_process_works_on_the_very_next_request() {
    for backend in backends() {
        let h = Harness::start(backend).await;
        let (store, keys) = elsewhere(&h, "ada", 1).await;
        // No sleep, no reload: the gateway looks the unknown key up.
        let response = h.chat(&keys[0].1, hello()).await;
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
        store.close().await;
        h.shutdown().await;
    }
}

#[tokio::test]
async fn a_revoked_key_is_refused_by_every_instance_within_the_poll_interval() {
    for backend in backends() {
        let h = Harness::start(backend).await;
        let second = h.start_another(|_, _| {}).await;
        let second_base = format!("http://{}", second.addr);
        let (store, keys) = elsewhere(&h, "bo", 1).await;
        let (key_id, secret) = &keys[0];
        assert_eq!(chat_at(&h, &h.base, secret).await.status(), 200);
        assert_eq!(chat_at(&h, &second_base, secret).await.status(), 200);

        store.set_key_status(*key_id, "revoked").await.unwrap();
        let revoked_at = Instant::now();
        for base in [&h.base, &second_base] {
            loop {
                let status = chat_at(&h, base, secret).await.status();
                if status == 401 {
                    break;
                }
                assert_eq!(status, 200);
                assert!(
                    revoked_at.elapsed() < Duration::from_secs(2),
                    "{base} still accepts a revoked key"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        // The poll interval is 50 ms; allow for a loaded test machine.
        assert!(revoked_at.elapsed() < Duration::from_secs(1));
        second.shutdown().await.unwrap();
        store.close().await;
        h.shutdown().await;
    }
}

#[tokio::test]
async fn an_unknown_key_is_looked_up_once_however_often_and_concurrently_it_is_sent() {
    for backend in backends() {
        let h = Harness::start(backend).await;
        let accounts = h.gateway().accounts.clone();
        let before = accounts.lookups();
        for _ in 0..10 {
            let response = h.chat("sk-does-not-exist", hello()).await;
            assert_eq!(response.status(), 401);
        }
        assert_eq!(accounts.lookups() - before, 1, "negative cache");

        let before = accounts.lookups();
        let concurrent = (0..16).map(|_| h.chat("sk-also-unknown", hello()));
        for response in futures_util::future::join_all(concurrent).await {
            assert_eq!(response.status(), 401);
        }
        assert_eq!(accounts.lookups() - before, 1, "single flight");

        // Creating the key ends its negative entry within the poll interval (the change
        // feed), not after the negative TTL (30 s).
        let (store, _) = elsewhere(&h, "cy", 0).await;
        let owner = store.user_by_name("cy").await.unwrap().unwrap();
        store
            .create_key(&NewKey {
                user_id: owner.id,
                key_hash: api_key::hash("sk-also-unknown"),
                key_prefix: "sk-also".into(),
                ..NewKey::default()
            })
            .await
            .unwrap();
        let created_at = Instant::now();
        while h.chat("sk-also-unknown", hello()).await.status() == 401 {
            assert!(
                created_at.elapsed() < Duration::from_secs(2),
                "still refused"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let lookups = accounts.lookups();
        assert_eq!(h.chat("sk-also-unknown", hello()).await.status(), 200);
        assert_eq!(accounts.lookups(), lookups, "then a cache hit");
        store.close().await;
        h.shutdown().await;
    }
}

#[tokio::test]
async fn a_flood_of_random_keys_costs_a_bounded_number_of_queries_and_valid_keys_still_work() {
    for backend in backends() {
        let h = Harness::start_with(backend, |settings, _| {
            settings.key_cache.lookups_per_address_per_s = 2;
            settings.key_cache.lookups_per_s = 1000;
        })
        .await;
        let (_, known) = h
            .user_with_key("dee", Nanos::from_usd(1), KeyOptions::default())
            .await;
        assert_eq!(h.chat(&known, hello()).await.status(), 200);
        let accounts = h.gateway().accounts.clone();
        let before = accounts.lookups();
        let started = Instant::now();
        let (mut refused, mut throttled) = (0, 0);
        for i in 0..100 {
            let response = h.chat(&format!("sk-random-{i}"), hello()).await;
            match response.status().as_u16() {
                401 => refused += 1,
                429 => {
                    assert!(response.headers().contains_key("retry-after"));
                    let body: Value = response.json().await.unwrap();
                    assert_eq!(body["error"]["code"], "key_lookups_exceeded");
                    throttled += 1;
                }
                other => panic!("unexpected status {other}"),
            }
        }
        let queries = accounts.lookups() - before;
        // A burst of 4 s at 2/s, plus 2/s for the time the flood took.
        let allowed = 8 + (started.elapsed().as_secs_f64() * 2.0).ceil() as u64;
        assert!(queries <= allowed, "{queries} queries > {allowed}");
        assert_eq!(refused, queries);
        assert_eq!(throttled, 100 - queries);
        // A cached key is not charged: it works in the middle of the flood.
        assert_eq!(h.chat(&known, hello()).await.status(), 200);
        h.shutdown().await;
    }
}

#[tokio::test]
async fn evicted_keys_are_read_again_on_use() {
    for backend in backends() {
        let h = Harness::start_with(backend, |settings, _| {
            settings.key_cache.capacity = 2;
        })
        .await;
        let (store, keys) = elsewhere(&h, "eve", 3).await;
        let accounts = h.gateway().accounts.clone();
        for (_, secret) in &keys {
            assert_eq!(h.chat(secret, hello()).await.status(), 200);
        }
        let (cached_keys, cached_users) = accounts.sizes();
        assert!(cached_keys <= 2 && cached_users <= 2);
        let before = accounts.lookups();
        for (_, secret) in &keys {
            assert_eq!(h.chat(secret, hello()).await.status(), 200);
        }
        assert!(
            accounts.lookups() > before,
            "a key that was not held must have been read again"
        );
        store.close().await;
        h.shutdown().await;
    }
}

#[tokio::test]
async fn the_config_file_is_applied_only_when_it_changed_and_never_by_the_cli() {
    for backend in backends() {
        let mut h = Harness::start(backend).await;
        let store = Store::connect(&h.database_url, h.secret_key.as_ref())
            .await
            .unwrap();
        let id = h.channel_id("mock").await;
        let mut channel = store.channel_by_id(id).await.unwrap().unwrap();
        channel.enabled = false;
        store.update_channel(&channel).await.unwrap();
        h.gateway.take().unwrap().shutdown().await.unwrap();
        let changes = store.last_change_id().await.unwrap();

        // A CLI command opens the store and changes nothing.
        let settings = base_settings(&h.database_url, &h.mock.base_url());
        server::open_store(&settings).await.unwrap().close().await;
        // `serve` with the same file keeps the admin's edit.
        let restarted = h.start_another(|_, _| {}).await;
        assert!(!store.channel_by_id(id).await.unwrap().unwrap().enabled);
        assert!(restarted.catalog.load().channels_for("mock-gpt").is_empty());
        assert_eq!(store.last_change_id().await.unwrap(), changes);
        restarted.shutdown().await.unwrap();

        // An edited file wins.
        let edited = h
            .start_another(|settings, _| settings.channels[0].weight = 3)
            .await;
        let applied = store.channel_by_id(id).await.unwrap().unwrap();
        assert!(applied.enabled);
        assert_eq!(applied.weight, 3);
        assert_eq!(edited.catalog.load().channels_for("mock-gpt").len(), 1);
        edited.shutdown().await.unwrap();
        store.close().await;
    }
}

#[tokio::test]
async fn a_credit_and_a_disabled_owner_reach_a_running_gateway_through_the_feed() {
    for backend in backends() {
        let h = Harness::start(backend).await;
        let (store, keys) = elsewhere(&h, "fay", 1).await;
        let secret = &keys[0].1;
        assert_eq!(h.chat(secret, hello()).await.status(), 200);
        h.gateway().writer.flush().await;
        let user = store.user_by_name("fay").await.unwrap().unwrap();

        // A credit from another process: the books take it at the next poll, not at the
        // periodic refresh (5 s).
        store
            .credit_user(user.id, Nanos::from_usd(5), LedgerKind::Admin, "top-up")
            .await
            .unwrap();
        let credited = store.user_by_id(user.id).await.unwrap().unwrap().balance;
        let started = Instant::now();
        while h.gateway().books.balance(user.id) != credited {
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "credit not seen"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        // The owner disabled: its cached key is refused within the poll interval.
        store
            .set_user_role_status(user.id, "user", "disabled")
            .await
            .unwrap();
        let started = Instant::now();
        loop {
            let response = h.chat(secret, hello()).await;
            if response.status() == 401 {
                let body: Value = response.json().await.unwrap();
                let message = body["error"]["message"].as_str().unwrap_or_default();
                assert!(message.contains("account"), "{message}");
                break;
            }
            assert_eq!(response.status(), 200);
            assert!(started.elapsed() < Duration::from_secs(2), "still served");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        store.close().await;
        h.shutdown().await;
    }
}
