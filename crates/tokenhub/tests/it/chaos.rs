//! Chaos: upstreams failing at random (5xx, 429, silence, drops mid-stream, slow first
//! token, missing usage, one upstream key rate-limited) under concurrent load, on channels
//! with several keys and a concurrency cap, bounded in count and time. Afterwards every
//! request either succeeded or got a clean OpenAI-style error, each left exactly one usage
//! record, and the ledger balances to the nano-dollar.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crate::harness::*;
use futures_util::StreamExt;
use rand::Rng;
use serde_json::{Value, json};
use tokenhub::accounts::KeyOptions;
use tokenhub::ledger::money::Nanos;

const REQUESTS: usize = 240;
const CONCURRENCY: usize = 16;

fn chaotic_knobs(rng: &mut impl Rng, n: usize) -> (&'static str, Value) {
    let key = format!("chaos-{n}");
    match rng.random_range(0..11) {
        0 => (
            "5xx once",
            json!({"fail_status": 500, "fail_times": 1, "fail_key": key}),
        ),
        1 => (
            "429 once",
            json!({"fail_status": 429, "fail_times": 1, "fail_key": key}),
        ),
        2 => ("503 always", json!({"fail_status": 503})),
        3 => ("silent", json!({"hang": true})),
        4 => (
            "drop mid-stream",
            json!({"drop_after_chunks": 2, "chunks": 5}),
        ),
        5 => ("slow first token", json!({"ttfb_ms": 150})),
        6 => ("no usage", json!({"usage": false})),
        7 => ("mid-stream error", json!({"mid_stream_error": true})),
        9 => (
            "one key 429",
            json!({"fail_keys": ["chaos-b-1"], "fail_status": 429}),
        ),
        _ => ("healthy", json!({})),
    }
}

#[tokio::test]
async fn random_upstream_failures_never_lose_or_double_bill_a_request() {
    let h = Harness::start_with(Backend::Sqlite, |settings, mock| {
        settings.upstream_first_byte_timeout_ms = 300;
        settings.breaker_threshold = 40;
        settings.breaker_cooldown_ms = 200;
        let mut pooled = channel("chaos-b", mock, &["mock-gpt"], 0);
        pooled.api_key = None;
        pooled.api_keys = vec!["chaos-b-1".into(), "chaos-b-2".into()];
        pooled.max_concurrency = Some(4);
        settings.channels.push(pooled);
        settings
            .channels
            .push(channel("chaos-c", mock, &["mock-gpt"], 0));
    })
    .await;
    let opening = Nanos::from_usd(10);
    let (user, key) = h
        .user_with_key("chaos", opening, KeyOptions::default())
        .await;
    let h = Arc::new(h);
    let mut rng = rand::rng();
    let plans: Vec<(usize, &'static str, Value, bool)> = (0..REQUESTS)
        .map(|n| {
            let (label, knobs) = chaotic_knobs(&mut rng, n);
            (n, label, knobs, rng.random_bool(0.5))
        })
        .collect();
    let outcomes = futures_util::stream::iter(plans)
        .map(|(n, label, knobs, stream)| {
            let h = h.clone();
            let key = key.clone();
            async move {
                let body = json!({"model": "mock-gpt", "stream": stream, "messages": user_says(&format!("request {n}")), "mock": knobs});
                let response = tokio::time::timeout(Duration::from_secs(10), h.chat(&key, body)).await.expect("bounded");
                let status = response.status().as_u16();
                let id = request_id(&response);
                let text = response.text().await.unwrap_or_default();
                (label, stream, status, id, text)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await;

    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut ids = HashSet::new();
    for (label, stream, status, id, text) in &outcomes {
        assert!(ids.insert(id.clone()), "request ids are unique");
        let verdict = if *status == 200 && !*stream {
            let body: Value = serde_json::from_str(text).expect("a 200 is a JSON completion");
            assert!(
                body["choices"][0]["message"]["content"]
                    .as_str()
                    .is_some_and(|t| t.contains("You said"))
            );
            "ok"
        } else if *status == 200 {
            let data = sse_data(text);
            let last = data.last().expect("a stream has events");
            if last == "[DONE]" {
                assert!(streamed_text(&data).contains("You said"), "{label}: {text}");
                "ok (stream)"
            } else {
                let event: Value = serde_json::from_str(last).expect("last event is JSON");
                assert!(
                    event["error"]["message"].is_string(),
                    "{label}: a broken stream ends with an error event: {text}"
                );
                "stream ended with error event"
            }
        } else {
            let body: Value = serde_json::from_str(text)
                .unwrap_or_else(|_| panic!("{label}: {status} body is JSON: {text}"));
            assert!(
                body["error"]["message"].is_string() && body["error"].get("code").is_some(),
                "{label}: {text}"
            );
            assert!(
                [429, 502, 503, 504].contains(status),
                "{label}: unexpected status {status}"
            );
            if *status == 429 {
                "429"
            } else if *status == 504 {
                "504 timeout"
            } else {
                "5xx"
            }
        };
        *counts
            .entry(format!("{label:>18} -> {verdict}"))
            .or_default() += 1;
    }

    h.gateway().writer.flush().await;
    let store = &h.gateway().store;
    assert_eq!(
        store.usage_count().await.unwrap() as usize,
        REQUESTS,
        "exactly one usage record per request"
    );
    for id in &ids {
        assert!(
            store.usage_by_request_id(id).await.unwrap().is_some(),
            "record for {id}"
        );
    }
    let balance = h.stored_balance(user.id).await;
    let billed = store.total_usage_cost().await.unwrap();
    assert_eq!(balance, opening - billed, "Σ usage costs = debited balance");
    assert_eq!(store.recomputed_balance(user.id).await.unwrap(), balance);
    assert_eq!(
        h.gateway().books.balance(user.id),
        balance,
        "memory and database agree"
    );

    let journal = h.mock.journal().len();
    println!(
        "chaos: {REQUESTS} requests, {journal} upstream attempts ({} retried or failed over), billed {billed}",
        journal.saturating_sub(REQUESTS)
    );
    for (outcome, count) in counts {
        println!("chaos: {count:>4}  {outcome}");
    }
    Arc::try_unwrap(h)
        .ok()
        .expect("no other handles")
        .shutdown()
        .await;
}
