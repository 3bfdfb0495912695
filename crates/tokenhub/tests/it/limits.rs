//! Per-key limits enforced by the relay: requests and tokens per minute, client IP allow
//! lists, and user defaults that keys inherit — each tested at its boundary.

use crate::harness::*;
use serde_json::{Value, json};
use tokenhub::accounts::KeyOptions;
use tokenhub::ledger::money::Nanos;
use tokenhub::store::{KeyLimits, UserLimits};

fn limited(rpm: Option<i64>, tpm: Option<i64>, ips: Option<&[&str]>) -> KeyOptions {
    KeyOptions {
        limits: KeyLimits {
            allowed_ips: ips.map(|ips| ips.iter().map(|ip| ip.to_string()).collect()),
            rpm,
            tpm,
        },
        ..KeyOptions::default()
    }
}

fn small_request() -> Value {
    json!({"model": "mock-gpt", "messages": user_says("hi"), "max_tokens": 10})
}

#[tokio::test]
async fn requests_per_minute_admit_exactly_the_limit_then_429_with_openai_headers() {
    let h = Harness::start(Backend::Sqlite).await;
    let (_, key) = h
        .user_with_key("rpm", Nanos::from_usd(1), limited(Some(3), None, None))
        .await;
    for _ in 0..3 {
        assert_eq!(h.chat(&key, small_request()).await.status(), 200);
    }
    let refused = h.chat(&key, small_request()).await;
    assert_eq!(refused.status(), 429);
    let headers = refused.headers().clone();
    assert_eq!(headers["x-ratelimit-limit-requests"], "3");
    assert_eq!(headers["x-ratelimit-remaining-requests"], "0");
    assert!(
        headers["x-ratelimit-reset-requests"]
            .to_str()
            .unwrap()
            .ends_with('s')
    );
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(
        (19..=20).contains(&retry_after),
        "3 RPM refills one request per 20 s: {retry_after}"
    );
    let body: Value = refused.json().await.unwrap();
    assert_eq!(
        (
            body["error"]["type"].as_str(),
            body["error"]["code"].as_str()
        ),
        (Some("requests"), Some("rate_limit_exceeded"))
    );
    h.shutdown().await;
}

#[tokio::test]
async fn tokens_per_minute_count_the_estimate_then_the_real_usage() {
    let h = Harness::start(Backend::Sqlite).await;
    // Each request is estimated at ~body/3 + 10 ≈ 35 tokens and really uses 3+1+7 = 11.
    let (_, key) = h
        .user_with_key("tpm", Nanos::from_usd(1), limited(None, Some(100), None))
        .await;
    let mut admitted = 0;
    for _ in 0..20 {
        let response = h.chat(&key, small_request()).await;
        if response.status() == 429 {
            assert_eq!(response.headers()["x-ratelimit-limit-tokens"], "100");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["type"], "tokens");
            break;
        }
        assert_eq!(response.status(), 200);
        admitted += 1;
    }
    // Without the correction only 2 estimates would fit in 100; with it, real usage (11
    // each) frees room, so more requests pass before the bucket runs dry.
    assert!((4..20).contains(&admitted), "admitted {admitted}");
    h.shutdown().await;
}

#[tokio::test]
async fn ip_allow_lists_accept_listed_addresses_and_networks_only() {
    let h = Harness::start(Backend::Sqlite).await;
    let (_, loopback) = h
        .user_with_key(
            "ip1",
            Nanos::from_usd(1),
            limited(None, None, Some(&["127.0.0.0/8"])),
        )
        .await;
    let (_, exact) = h
        .user_with_key(
            "ip2",
            Nanos::from_usd(1),
            limited(None, None, Some(&["127.0.0.1"])),
        )
        .await;
    let (_, elsewhere) = h
        .user_with_key(
            "ip3",
            Nanos::from_usd(1),
            limited(None, None, Some(&["10.0.0.0/8", "::1"])),
        )
        .await;
    assert_eq!(h.chat(&loopback, small_request()).await.status(), 200);
    assert_eq!(h.chat(&exact, small_request()).await.status(), 200);
    let refused = h.chat(&elsewhere, small_request()).await;
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "ip_not_allowed");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1")
    );
    h.shutdown().await;
}

#[tokio::test]
async fn keys_inherit_their_owners_default_limits() {
    let h = Harness::start(Backend::Sqlite).await;
    let (user, key) = h
        .user_with_key("inherit", Nanos::from_usd(1), KeyOptions::default())
        .await;
    h.gateway()
        .store
        .set_user_limits(
            user.id,
            UserLimits {
                rpm: Some(2),
                tpm: None,
            },
        )
        .await
        .unwrap();
    h.reload().await;
    assert_eq!(h.chat(&key, small_request()).await.status(), 200);
    assert_eq!(h.chat(&key, small_request()).await.status(), 200);
    assert_eq!(h.chat(&key, small_request()).await.status(), 429);
    h.shutdown().await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_address_is_used() {
    let h = Harness::start_with(Backend::Sqlite, |settings, _| {
        settings.trusted_proxies = vec!["127.0.0.0/8".into()];
    })
    .await;
    let (_, key) = h
        .user_with_key(
            "px",
            Nanos::from_usd(1),
            limited(None, None, Some(&["198.51.100.7"])),
        )
        .await;
    let url = format!("{}/v1/chat/completions", h.base);
    let send = |forwarded: Option<&'static str>| {
        let mut request = h.http.post(&url).bearer_auth(&key).json(&small_request());
        if let Some(forwarded) = forwarded {
            request = request.header("x-forwarded-for", forwarded);
        }
        request.send()
    };
    assert_eq!(send(Some("198.51.100.7")).await.unwrap().status(), 200);
    assert_eq!(
        send(Some("203.0.113.1, 198.51.100.7"))
            .await
            .unwrap()
            .status(),
        200,
        "the proxy's own hop wins"
    );
    assert_eq!(
        send(Some("198.51.100.7, 203.0.113.1"))
            .await
            .unwrap()
            .status(),
        403,
        "a client-written first hop does not"
    );
    assert_eq!(send(None).await.unwrap().status(), 403);
    h.shutdown().await;
}
