//! Routing and resilience: circuit breakers, cooldowns, Retry-After, stream timeouts and
//! the shutdown grace period, driven by the mock upstream's failure modes.

use std::time::{Duration, Instant};

use crate::harness::*;
use mock_upstream::{Defaults, MockServer};
use serde_json::{Value, json};
use tokenhub::accounts::KeyOptions;
use tokenhub::ledger::money::Nanos;

#[tokio::test]
async fn a_channel_that_keeps_failing_is_skipped_until_its_cooldown_ends() {
    let h = Harness::start_with(Backend::Sqlite, |settings, mock| {
        settings.breaker_threshold = 2;
        settings.breaker_cooldown_ms = 60_000;
        settings
            .channels
            .push(channel("dead", "http://127.0.0.1:9", &["mock-gpt"], 10));
        settings
            .channels
            .push(channel("live", mock, &["mock-gpt"], 0));
    })
    .await;
    let (_, key) = h
        .user_with_key("ab", Nanos::from_usd(1), KeyOptions::default())
        .await;
    for _ in 0..4 {
        let response = h
            .chat(
                &key,
                json!({"model": "mock-gpt", "messages": user_says("hi")}),
            )
            .await;
        assert_eq!(response.status(), 200, "the lower tier answers every time");
    }
    let report = h.health_of("dead").await;
    assert_eq!(report.state, "open");
    assert_eq!(
        report.failures, 2,
        "after two failures the dead channel is no longer tried"
    );
    assert!(report.cooldown_remaining_ms.is_some_and(|ms| ms > 50_000));
    h.shutdown().await;
}

#[tokio::test]
async fn when_every_channel_cools_down_clients_get_503_with_retry_after() {
    let h = Harness::start_with(Backend::Sqlite, |settings, _| {
        settings.breaker_threshold = 1;
        settings.breaker_cooldown_ms = 5_000;
    })
    .await;
    let (_, key) = h
        .user_with_key("cd", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let failing =
        json!({"model": "mock-gpt", "messages": user_says("x"), "mock": {"fail_status": 503}});
    assert_eq!(h.chat(&key, failing).await.status(), 503);
    let response = h
        .chat(
            &key,
            json!({"model": "mock-gpt", "messages": user_says("x")}),
        )
        .await;
    assert_eq!(response.status(), 503);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=5).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "channels_cooling_down");
    h.shutdown().await;
}

#[tokio::test]
async fn a_rejected_channel_credential_disables_that_channel() {
    let strict = MockServer::start_with(Defaults {
        api_key: Some("the-right-key".into()),
        ..Defaults::default()
    })
    .await
    .unwrap();
    let strict_url = strict.base_url();
    let h = Harness::start_with(Backend::Sqlite, move |settings, mock| {
        settings
            .channels
            .push(channel("wrong-key", &strict_url, &["mock-gpt"], 10));
        settings
            .channels
            .push(channel("fallback", mock, &["mock-gpt"], 0));
    })
    .await;
    let (_, key) = h
        .user_with_key("ef", Nanos::from_usd(1), KeyOptions::default())
        .await;
    for _ in 0..3 {
        let response = h
            .chat(
                &key,
                json!({"model": "mock-gpt", "messages": user_says("x")}),
            )
            .await;
        assert_eq!(response.status(), 200);
    }
    assert_eq!(
        strict.journal().len(),
        1,
        "a 401 from upstream disables the channel after one try"
    );
    let report = h.health_of("wrong-key").await;
    assert_eq!(report.state, "disabled");
    assert!(
        report
            .disabled_reason
            .unwrap()
            .contains("Incorrect API key")
    );
    h.shutdown().await;
}

#[tokio::test]
async fn an_upstream_that_goes_silent_mid_stream_is_cut_off() {
    let h = Harness::start_with(Backend::Sqlite, |settings, _| {
        settings.upstream_idle_timeout_ms = 300
    })
    .await;
    let (_, key) = h
        .user_with_key("gh", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let request = json!({"model": "mock-gpt", "stream": true, "messages": user_says("a b c d"),
        "mock": {"chunks": 4, "chunk_delay_ms": 1500}});
    let started = Instant::now();
    let response = h.chat(&key, request).await;
    let id = request_id(&response);
    let body = response.text().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "cut off after the idle limit, not at the end"
    );
    let data = sse_data(&body);
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("silent"),
        "{body}"
    );
    let record = h.record(&id).await;
    assert!(
        record
            .error
            .as_deref()
            .is_some_and(|e| e.contains("silent"))
    );
    h.shutdown().await;
}

#[tokio::test]
async fn shutdown_ends_streams_that_outlive_the_grace_period_and_settles_them() {
    let mut h = Harness::start_with(Backend::Sqlite, |settings, _| {
        settings.shutdown_grace_ms = 200
    })
    .await;
    let (user, key) = h
        .user_with_key("ij", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let request = json!({"model": "mock-gpt", "stream": true, "messages": user_says("a b c d e f"),
        "mock": {"chunks": 10, "chunk_delay_ms": 400}});
    let response = h.chat(&key, request).await;
    let id = request_id(&response);
    let started = Instant::now();
    let shutdown = tokio::spawn(h.gateway.take().unwrap().shutdown());
    let body = response.text().await.unwrap();
    shutdown.await.unwrap().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the grace period bounds shutdown"
    );
    assert!(body.contains("shutting down"), "{body}");
    let store = tokenhub::store::Store::connect(&h.database_url, h.secret_key.as_ref())
        .await
        .unwrap();
    let record = store
        .usage_by_request_id(&id)
        .await
        .unwrap()
        .expect("settled and flushed");
    assert!(record.error.is_some() && record.estimated);
    assert_eq!(
        store.recomputed_balance(user.id).await.unwrap(),
        store.user_by_id(user.id).await.unwrap().unwrap().balance
    );
}

#[tokio::test]
async fn a_model_whose_channels_all_fail_falls_back_and_bills_the_model_that_answered() {
    let h = Harness::start_with(Backend::Sqlite, |settings, mock| {
        settings
            .channels
            .push(channel("dead", "http://127.0.0.1:9", &["primary"], 0));
        settings
            .channels
            .push(channel("flaky", mock, &["secondary"], 0));
        let mut primary = model("primary", "5", "5");
        primary.fallbacks = Some(vec!["missing-model".into(), "mock-gpt".into()]);
        settings.models.push(primary);
        let mut secondary = model("secondary", "5", "5");
        secondary.fallbacks = Some(vec!["mock-gpt".into()]);
        settings.models.push(secondary);
    })
    .await;
    let (user, key) = h
        .user_with_key("fb", Nanos::from_usd(1), KeyOptions::default())
        .await;
    for stream in [false, true] {
        let request =
            json!({"model": "primary", "stream": stream, "messages": user_says("Hello there")});
        let response = h.chat(&key, request).await;
        assert_eq!(response.status(), 200, "stream={stream}");
        let id = request_id(&response);
        let text = response.text().await.unwrap();
        let answer = if stream {
            streamed_text(&sse_data(&text))
        } else {
            text
        };
        assert!(answer.contains("Hello there"), "{answer}");
        let record = h.record(&id).await;
        assert_eq!(
            record.model, "mock-gpt",
            "the record names the model that answered"
        );
        assert_eq!(record.cost, cost_of(5, 7), "and bills its price");
    }
    // A client mistake is not retried on a fallback model.
    let before = h.mock.journal().len();
    let mistake =
        json!({"model": "secondary", "messages": user_says("x"), "mock": {"fail_status": 400}});
    assert_eq!(h.chat(&key, mistake).await.status(), 400);
    assert_eq!(h.mock.journal().len() - before, 1);
    assert_eq!(
        h.gateway().books.available(user.id),
        h.stored_balance(user.id).await,
        "no reservation left behind"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn admins_can_pin_a_channel_for_debugging_and_nobody_else_can() {
    let h = Harness::start_with(Backend::Sqlite, |settings, mock| {
        settings
            .channels
            .push(channel("preferred", mock, &["mock-gpt"], 10));
        settings
            .channels
            .push(channel("debug-me", mock, &["mock-gpt"], 0));
    })
    .await;
    let store = &h.gateway().store;
    let admin = tokenhub::accounts::create_user(store, "ops", "admin", Nanos::from_usd(1))
        .await
        .unwrap();
    let (_, admin_key) = tokenhub::accounts::issue_key(store, &admin, KeyOptions::default())
        .await
        .unwrap();
    let (_, user_key) = h
        .user_with_key("dev", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let debug_id = store
        .all_channels()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name == "debug-me")
        .unwrap()
        .id;
    let pinned = |key: String, channel: &'static str| {
        h.http
            .post(format!("{}/v1/chat/completions", h.base))
            .bearer_auth(key)
            .header("x-tokenhub-channel", channel)
            .json(&json!({"model": "mock-gpt", "messages": user_says("hi")}))
            .send()
    };
    for _ in 0..3 {
        let response = pinned(admin_key.clone(), "debug-me").await.unwrap();
        assert_eq!(response.status(), 200);
        let id = request_id(&response);
        assert_eq!(
            h.record(&id).await.channel_id,
            Some(debug_id),
            "the pinned channel answered"
        );
    }
    let refused = pinned(user_key, "debug-me").await.unwrap();
    assert_eq!(refused.status(), 403);
    let wrong = pinned(admin_key, "no-such-channel").await.unwrap();
    assert_eq!(wrong.status(), 400);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error"]["code"], "channel_not_serving_model");
    h.shutdown().await;
}
