//! Several upstream keys per channel: used in turn, each with its own circuit, a rejected
//! key disabled alone, and the channel unusable only when every key is. Each test checks
//! which key answered (the mock's journal), what the client saw, what was billed (once),
//! and the resulting health.

use crate::harness::*;
use mock_upstream::{Defaults, MockServer};
use serde_json::{Value, json};
use tokenhub::accounts::{self, KeyOptions};
use tokenhub::ledger::money::Nanos;

const KEY_A: &str = "key-aaaa-0000-1111";
const KEY_B: &str = "key-bbbb-0000-2222";
const KEY_C: &str = "key-cccc-0000-3333";

/// A channel on `url` holding `keys`, first in routing order (priority 10).
fn multi_key_channel(name: &str, url: &str, keys: &[&str]) -> tokenhub::config::ChannelConfig {
    let mut multi = channel(name, url, &["mock-gpt"], 10);
    multi.api_key = None;
    multi.api_keys = keys.iter().map(|k| (*k).into()).collect();
    multi
}

/// The upstream key each journaled request presented, in order.
fn presented_keys(mock: &MockServer) -> Vec<String> {
    mock.journal()
        .iter()
        .filter(|r| r.path.ends_with("/chat/completions"))
        .map(|r| {
            r.header("authorization")
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

fn chat_body(mock: Value) -> Value {
    json!({"model": "mock-gpt", "messages": user_says("hello"), "max_tokens": 50, "mock": mock})
}

/// Sends one chat, checks it answered 200, and returns its usage record's cost.
async fn chat_ok(h: &Harness, key: &str, mock: Value) -> Nanos {
    let response = h.chat(key, chat_body(mock)).await;
    assert_eq!(response.status(), 200, "the client sees a success");
    let id = request_id(&response);
    let body: Value = response.json().await.unwrap();
    let record = h.record(&id).await;
    assert_eq!(record.status, 200);
    let usage = &body["usage"];
    let expected = cost_of(
        usage["prompt_tokens"].as_u64().unwrap(),
        usage["completion_tokens"].as_u64().unwrap(),
    );
    assert_eq!(record.cost, expected, "billed once, at the answer's usage");
    record.cost
}

#[tokio::test]
async fn keys_take_turns_and_each_is_billed_once() {
    let h = Harness::start_with(Backend::Sqlite, |settings, mock| {
        settings
            .channels
            .push(multi_key_channel("multi", mock, &[KEY_A, KEY_B, KEY_C]));
    })
    .await;
    let (user, key) = h
        .user_with_key("turns", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let mut spent = Nanos::ZERO;
    for _ in 0..6 {
        spent += chat_ok(&h, &key, json!({})).await;
    }
    assert_eq!(
        presented_keys(&h.mock),
        [KEY_A, KEY_B, KEY_C, KEY_A, KEY_B, KEY_C],
        "round robin over the channel's keys"
    );
    assert_eq!(h.stored_balance(user.id).await, Nanos::from_usd(1) - spent);
    let health = h.health_of("multi").await;
    let per_key: Vec<u64> = health.keys.iter().map(|k| k.successes).collect();
    assert_eq!(per_key, [2, 2, 2]);
    assert_eq!(health.state, "closed");
    let masked: Vec<&str> = health.keys.iter().map(|k| k.masked.as_str()).collect();
    assert_eq!(masked, ["key…1111", "key…2222", "key…3333"]);
    h.shutdown().await;
}

#[tokio::test]
async fn a_rejected_key_is_disabled_alone_and_the_next_key_answers_the_same_request() {
    let strict = MockServer::start_with(Defaults {
        api_key: Some(KEY_B.into()),
        ..Defaults::default()
    })
    .await
    .unwrap();
    let strict_url = strict.base_url();
    let h = Harness::start_with(Backend::Sqlite, move |settings, _| {
        settings
            .channels
            .push(multi_key_channel("multi", &strict_url, &[KEY_A, KEY_B]));
    })
    .await;
    let (user, key) = h
        .user_with_key("reject", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let mut spent = Nanos::ZERO;
    for _ in 0..3 {
        spent += chat_ok(&h, &key, json!({})).await;
    }
    assert_eq!(
        presented_keys(&strict),
        [KEY_A, KEY_B, KEY_B, KEY_B],
        "the rejected key is tried once; its request moved on to the next key"
    );
    assert!(
        h.mock.journal().is_empty(),
        "the lower-priority channel was never needed"
    );
    assert_eq!(h.stored_balance(user.id).await, Nanos::from_usd(1) - spent);
    let health = h.health_of("multi").await;
    assert_eq!(
        health.state, "closed",
        "the channel still serves with key B"
    );
    assert_eq!(health.keys[0].state, "disabled");
    let reason = health.keys[0].disabled_reason.clone().unwrap();
    assert!(
        reason.contains("401") && reason.contains("Incorrect API key"),
        "{reason}"
    );
    assert!(!reason.contains(KEY_A), "the reason never shows the key");
    assert_eq!(
        (health.keys[1].state, health.keys[1].successes),
        ("closed", 3)
    );

    // An unrelated change reloads the snapshot; the rejected key stays disabled.
    h.user_with_key("bystander", Nanos::ZERO, KeyOptions::default())
        .await;
    chat_ok(&h, &key, json!({})).await;
    assert_eq!(
        presented_keys(&strict).last().map(String::as_str),
        Some(KEY_B)
    );
    assert_eq!(presented_keys(&strict).len(), 5);
    assert_eq!(h.health_of("multi").await.keys[0].state, "disabled");
    h.shutdown().await;
}

#[tokio::test]
async fn a_channel_whose_keys_are_all_rejected_is_skipped_for_the_next_channel() {
    let strict = MockServer::start_with(Defaults {
        api_key: Some("the-right-key".into()),
        ..Defaults::default()
    })
    .await
    .unwrap();
    let strict_url = strict.base_url();
    let h = Harness::start_with(Backend::Sqlite, move |settings, _| {
        settings
            .channels
            .push(multi_key_channel("all-wrong", &strict_url, &[KEY_A, KEY_B]));
    })
    .await;
    let (_, key) = h
        .user_with_key("allwrong", Nanos::from_usd(1), KeyOptions::default())
        .await;
    chat_ok(&h, &key, json!({})).await;
    chat_ok(&h, &key, json!({})).await;
    assert_eq!(
        presented_keys(&strict),
        [KEY_A, KEY_B],
        "both keys were tried once, by the first request only"
    );
    assert_eq!(
        presented_keys(&h.mock),
        ["mock-upstream-key", "mock-upstream-key"],
        "the next channel answered both requests"
    );
    let health = h.health_of("all-wrong").await;
    assert_eq!(health.state, "disabled");
    assert!(health.disabled_reason.is_some());
    assert!(health.keys.iter().all(|k| k.state == "disabled"));
    h.shutdown().await;
}

#[tokio::test]
async fn a_rate_limited_key_cools_down_while_its_siblings_serve() {
    let h = Harness::start_with(Backend::Sqlite, |settings, mock| {
        settings.breaker_threshold = 1;
        settings.breaker_cooldown_ms = 60_000;
        settings
            .channels
            .push(multi_key_channel("multi", mock, &[KEY_A, KEY_B]));
    })
    .await;
    let (user, key) = h
        .user_with_key("limited", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let knobs = json!({"fail_keys": [KEY_A], "fail_status": 429});
    let mut spent = Nanos::ZERO;
    for _ in 0..4 {
        spent += chat_ok(&h, &key, knobs.clone()).await;
    }
    assert_eq!(
        presented_keys(&h.mock),
        [KEY_A, KEY_B, KEY_B, KEY_B, KEY_B],
        "a 429 moves the request to the next key; the key's circuit then skips it"
    );
    assert_eq!(h.stored_balance(user.id).await, Nanos::from_usd(1) - spent);
    let health = h.health_of("multi").await;
    assert_eq!(health.state, "closed");
    assert_eq!(health.keys[0].state, "open");
    assert!(
        health.keys[0]
            .cooldown_remaining_ms
            .is_some_and(|ms| ms > 50_000)
    );
    assert_eq!((health.keys[0].failures, health.keys[1].successes), (1, 4));
    h.shutdown().await;
}

#[tokio::test]
async fn an_upstream_failure_moves_to_the_next_channel_not_the_next_key() {
    let h = Harness::start_with(Backend::Sqlite, |settings, mock| {
        settings
            .channels
            .push(multi_key_channel("multi", mock, &[KEY_A, KEY_B]));
    })
    .await;
    let (_, key) = h
        .user_with_key("outage", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let knobs = json!({"fail_keys": [KEY_A], "fail_status": 503});
    chat_ok(&h, &key, knobs.clone()).await;
    chat_ok(&h, &key, knobs).await;
    assert_eq!(
        presented_keys(&h.mock),
        [KEY_A, "mock-upstream-key", KEY_B],
        "a 5xx says the host is failing: the next channel answers; the next request takes key B's turn"
    );
    let health = h.health_of("multi").await;
    assert_eq!((health.keys[0].failures, health.keys[1].successes), (1, 1));
    h.shutdown().await;
}

/// Both backends: the new channel columns (migration 0006) are written and read back.
#[tokio::test]
async fn operators_see_keys_masked_and_per_key_health() {
    for backend in backends() {
        operators_view(backend).await;
    }
}

async fn operators_view(backend: Backend) {
    let strict = MockServer::start_with(Defaults {
        api_key: Some(KEY_B.into()),
        ..Defaults::default()
    })
    .await
    .unwrap();
    let strict_url = strict.base_url();
    let h = Harness::start_with(backend, move |settings, _| {
        settings
            .channels
            .push(multi_key_channel("multi", &strict_url, &[KEY_A, KEY_B]));
    })
    .await;
    let store = &h.gateway().store;
    let root = accounts::user_named(store, "root").await.unwrap();
    let (_, token) = accounts::admin_token::issue(store, &accounts::Actor::cli(), &root, "ops")
        .await
        .unwrap();
    let (_, key) = h
        .user_with_key("ops", Nanos::from_usd(1), KeyOptions::default())
        .await;
    chat_ok(&h, &key, json!({})).await;
    let id = h.channel_id("multi").await;
    let admin_get = |path: String| {
        let request = h.http.get(format!("{}{path}", h.base)).bearer_auth(&token);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.text().await.unwrap()
        }
    };
    let openapi = admin_get("/api/openapi.json".to_string()).await;
    for field in [
        "api_keys_masked",
        "connect_timeout_ms",
        "first_token_timeout_ms",
        "idle_timeout_ms",
        "total_timeout_ms",
        "max_concurrency",
        "KeyHealthView",
    ] {
        assert!(
            openapi.contains(field),
            "the OpenAPI document describes {field}"
        );
    }
    let view = admin_get(format!("/api/admin/channels/{id}")).await;
    assert!(!view.contains(KEY_A) && !view.contains(KEY_B), "{view}");
    let view: Value = serde_json::from_str(&view).unwrap();
    assert_eq!(view["api_keys_masked"], json!(["key…1111", "key…2222"]));
    let health = admin_get(format!("/api/admin/channels/{id}/health")).await;
    assert!(!health.contains(KEY_A) && !health.contains(KEY_B));
    let health: Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["state"], "closed");
    assert_eq!(health["keys"][0]["state"], "disabled");
    assert_eq!(health["keys"][0]["masked"], "key…1111");
    assert!(
        health["keys"][0]["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("401")
    );
    assert_eq!(health["keys"][1]["state"], "closed");

    // The test action tries every key and reports each.
    let response = h
        .http
        .post(format!("{}/api/admin/channels/{id}/test", h.base))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let tested: Value = response.json().await.unwrap();
    assert_eq!(tested["ok"], false, "key A still fails");
    assert_eq!(tested["status"], 401);
    let oks: Vec<&Value> = tested["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| &k["ok"])
        .collect();
    assert_eq!(oks, [&json!(false), &json!(true)]);

    // Replacing the keys through the API: the bad key goes, the reload forgets its state.
    let response = h
        .http
        .patch(format!("{}/api/admin/channels/{id}", h.base))
        .bearer_auth(&token)
        .json(&json!({"api_keys": [KEY_B, KEY_C], "max_concurrency": 3, "first_token_timeout_ms": 1500}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let patched: Value = response.json().await.unwrap();
    assert_eq!(patched["api_keys_masked"], json!(["key…2222", "key…3333"]));
    assert_eq!(patched["max_concurrency"], 3);
    assert_eq!(patched["first_token_timeout_ms"], 1500);
    assert_eq!(patched["idle_timeout_ms"], Value::Null);
    h.reload().await;
    let keys = h.health_of("multi").await.keys;
    assert_eq!(
        (keys[0].masked.as_str(), keys[0].successes),
        ("key…2222", 2),
        "key B keeps its history across the edit"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn when_every_key_of_a_model_is_rejected_clients_get_clean_errors_and_pay_nothing() {
    let strict = MockServer::start_with(Defaults {
        api_key: Some("the-right-key".into()),
        ..Defaults::default()
    })
    .await
    .unwrap();
    let strict_url = strict.base_url();
    let h = Harness::start_with(Backend::Sqlite, move |settings, _| {
        let mut locked = multi_key_channel("locked", &strict_url, &[KEY_A, KEY_B]);
        locked.models = vec!["locked-model".into()];
        locked
            .model_map
            .insert("locked-model".into(), "mock-gpt".into());
        settings.channels.push(locked);
        settings.models.push(model("locked-model", "1", "2"));
    })
    .await;
    let (user, key) = h
        .user_with_key("locked", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let body = json!({"model": "locked-model", "messages": user_says("hi")});

    let first = h.chat(&key, body.clone()).await;
    assert_eq!(
        first.status(),
        502,
        "the upstream's refusal, after both keys"
    );
    let first_id = request_id(&first);
    let error: Value = first.json().await.unwrap();
    assert_eq!(error["error"]["code"], "upstream_error");
    assert_eq!(presented_keys(&strict), [KEY_A, KEY_B]);

    let second = h.chat(&key, body).await;
    assert_eq!(second.status(), 503, "no key left to try");
    let second_id = request_id(&second);
    let error: Value = second.json().await.unwrap();
    assert_eq!(error["error"]["code"], "model_not_available");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("rejected the keys"), "{message}");
    assert!(!message.contains(KEY_A) && !message.contains(KEY_B));
    assert_eq!(presented_keys(&strict).len(), 2, "nothing more was sent");

    for id in [first_id, second_id] {
        let record = h.record(&id).await;
        assert_eq!(record.cost, Nanos::ZERO, "failures cost nothing");
    }
    assert_eq!(h.stored_balance(user.id).await, Nanos::from_usd(1));
    h.shutdown().await;
}
