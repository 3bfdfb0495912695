//! Per-channel limits: `max_concurrency` (a saturated channel is skipped; all saturated
//! gives a clean 429 that costs nothing) and per-channel timeouts overriding the global
//! ones (first token, idle, total), driven by slow mock answers.

use std::time::{Duration, Instant};

use crate::harness::*;
use mock_upstream::MockServer;
use serde_json::{Value, json};
use tokenhub::accounts::KeyOptions;
use tokenhub::config::ChannelConfig;
use tokenhub::ledger::money::Nanos;

/// A channel on `url` serving `model` (as the mock's `mock-gpt`), with its own key.
fn own_channel(name: &str, url: &str, model: &str, priority: i64) -> ChannelConfig {
    let mut config = channel(name, url, &[model], priority);
    config.api_key = Some(format!("{name}-key").into());
    config
        .model_map
        .insert(model.to_string(), "mock-gpt".to_string());
    config
}

fn presented_keys(mock: &MockServer) -> Vec<String> {
    mock.journal()
        .iter()
        .filter_map(|r| r.header("authorization"))
        .map(|v| v.trim_start_matches("Bearer ").to_string())
        .collect()
}

async fn cost_of_answer(h: &Harness, response: reqwest::Response) -> Nanos {
    assert_eq!(response.status(), 200);
    let id = request_id(&response);
    let body: Value = response.json().await.unwrap();
    let record = h.record(&id).await;
    let usage = &body["usage"];
    let expected = cost_of(
        usage["prompt_tokens"].as_u64().unwrap(),
        usage["completion_tokens"].as_u64().unwrap(),
    );
    assert_eq!((record.status, record.cost), (200, expected));
    record.cost
}

#[tokio::test]
async fn a_saturated_channel_is_skipped_for_the_next_candidate() {
    let h = Harness::start_with(Backend::Sqlite, |settings, mock| {
        let mut narrow = own_channel("narrow", mock, "mock-gpt", 10);
        narrow.max_concurrency = Some(1);
        settings.channels.push(narrow);
    })
    .await;
    let (user, key) = h
        .user_with_key("sat", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let slow = json!({"model": "mock-gpt", "messages": user_says("hi"), "mock": {"ttfb_ms": 1000}});
    let first = h.chat(&key, slow.clone());
    let second = async {
        // Starts once the first request holds the narrow channel's only slot.
        tokio::time::sleep(Duration::from_millis(300)).await;
        h.chat(&key, slow.clone()).await
    };
    let (first, second) = tokio::join!(first, second);
    let spent = cost_of_answer(&h, first).await + cost_of_answer(&h, second).await;
    assert_eq!(
        presented_keys(&h.mock),
        ["narrow-key", "mock-upstream-key"],
        "the second request skipped the saturated channel"
    );
    assert_eq!(h.stored_balance(user.id).await, Nanos::from_usd(1) - spent);
    let narrow = h.channel_id("narrow").await;
    assert_eq!(h.gateway().slots.in_flight(narrow), 0, "slots are freed");
    assert_eq!(
        h.health_of("narrow").await.failures,
        0,
        "saturation is not a failure"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn when_every_candidate_is_saturated_the_client_gets_429_and_pays_nothing() {
    let h = Harness::start_with(Backend::Sqlite, |settings, mock| {
        let mut solo = own_channel("solo", mock, "solo-model", 0);
        solo.max_concurrency = Some(1);
        settings.channels.push(solo);
        settings.models.push(model("solo-model", "1", "2"));
    })
    .await;
    let (user, key) = h
        .user_with_key("full", Nanos::from_usd(1), KeyOptions::default())
        .await;
    // A stream holds its slot until it ends.
    let streaming = h
        .chat(
            &key,
            json!({"model": "solo-model", "stream": true, "messages": user_says("one two three"),
                   "mock": {"chunks": 4, "chunk_delay_ms": 200}}),
        )
        .await;
    assert_eq!(streaming.status(), 200);
    let stream_id = request_id(&streaming);

    let refused = h
        .chat(
            &key,
            json!({"model": "solo-model", "messages": user_says("me too")}),
        )
        .await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    let refused_id = request_id(&refused);
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["error"]["code"], "channel_saturated");
    assert_eq!(error["error"]["type"], "rate_limit_error");
    let record = h.record(&refused_id).await;
    assert_eq!(
        (record.status, record.cost),
        (429, Nanos::ZERO),
        "one record, nothing billed"
    );

    let text = streaming.text().await.unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    let stream_cost = h.record_eventually(&stream_id).await.cost;
    assert!(stream_cost > Nanos::ZERO);
    let solo = h.channel_id("solo").await;
    assert_eq!(h.gateway().slots.in_flight(solo), 0);

    let after = h
        .chat(
            &key,
            json!({"model": "solo-model", "messages": user_says("now")}),
        )
        .await;
    let after_cost = cost_of_answer(&h, after).await;
    assert_eq!(
        h.mock.journal().len(),
        2,
        "the refused request reached no upstream"
    );
    assert_eq!(
        h.stored_balance(user.id).await,
        Nanos::from_usd(1) - stream_cost - after_cost
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_channel_first_token_timeout_fails_over_sooner_than_the_global_one() {
    let h = Harness::start_with(Backend::Sqlite, |settings, mock| {
        // The harness's global first-byte timeout is 3 s.
        let mut impatient = own_channel("impatient", mock, "mock-gpt", 10);
        impatient.first_token_timeout_ms = Some(200);
        settings.channels.push(impatient);
    })
    .await;
    let (user, key) = h
        .user_with_key("ttft", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let started = Instant::now();
    let response = h
        .chat(
            &key,
            json!({"model": "mock-gpt", "messages": user_says("hi"), "mock": {"ttfb_ms": 700}}),
        )
        .await;
    let spent = cost_of_answer(&h, response).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(2000),
        "the impatient channel gave up at 200 ms, then the next answered at 700 ms: {elapsed:?}"
    );
    assert_eq!(
        presented_keys(&h.mock),
        ["impatient-key", "mock-upstream-key"]
    );
    let health = h.health_of("impatient").await;
    assert_eq!((health.failures, health.successes), (1, 0));
    assert_eq!(h.stored_balance(user.id).await, Nanos::from_usd(1) - spent);
    h.shutdown().await;
}

#[tokio::test]
async fn channel_idle_and_total_timeouts_cut_streams_that_the_globals_would_let_run() {
    let h = Harness::start_with(Backend::Sqlite, |settings, mock| {
        let mut idle = own_channel("idle-cap", mock, "idle-model", 0);
        idle.idle_timeout_ms = Some(250);
        settings.channels.push(idle);
        let mut total = own_channel("total-cap", mock, "total-model", 0);
        total.total_timeout_ms = Some(600);
        settings.channels.push(total);
        settings.models.push(model("idle-model", "1", "2"));
        settings.models.push(model("total-model", "1", "2"));
    })
    .await;
    let (_, key) = h
        .user_with_key("cut", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let cases = [
        (
            "idle-model",
            json!({"chunks": 3, "chunk_delay_ms": 700}),
            "silent",
        ),
        (
            "total-model",
            json!({"chunks": 10, "chunk_delay_ms": 150}),
            "total timeout",
        ),
    ];
    for (model, mock, expected) in cases {
        let started = Instant::now();
        let response = h
            .chat(
                &key,
                json!({"model": model, "stream": true, "messages": user_says("a b c d"), "mock": mock}),
            )
            .await;
        assert_eq!(response.status(), 200);
        let id = request_id(&response);
        let body = response.text().await.unwrap();
        assert!(
            started.elapsed() < Duration::from_millis(1200),
            "{model}: cut by the channel's limit, not the global one"
        );
        let data = sse_data(&body);
        let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
        let message = last["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{model}: {body}");
        let record = h.record_eventually(&id).await;
        assert!(
            record
                .error
                .as_deref()
                .is_some_and(|e| e.contains(expected)),
            "{model}: the record says why"
        );
        assert!(
            record.cost > Nanos::ZERO,
            "{model}: billed for what was delivered"
        );
    }
    h.shutdown().await;
}

/// A listener whose accept queue is full: the kernel drops further SYNs, so a connect
/// to it hangs until the client's connect timeout. The returned sockets keep it full.
async fn blackhole() -> (
    std::net::SocketAddr,
    Vec<tokio::net::TcpStream>,
    tokio::net::TcpListener,
) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    for _ in 0..16 {
        match tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            Ok(Ok(stream)) => held.push(stream),
            _ => break,
        }
    }
    (addr, held, listener)
}

#[tokio::test]
async fn a_channel_connect_timeout_fails_over_sooner_than_the_global_one() {
    let (addr, _held, _listener) = blackhole().await;
    let probe = tokio::time::timeout(
        Duration::from_millis(300),
        tokio::net::TcpStream::connect(addr),
    )
    .await;
    if probe.is_ok() {
        eprintln!(
            "this kernel accepts connections beyond a full backlog: cannot test connect timeouts here"
        );
        return;
    }
    let url = format!("http://{addr}");
    let h = Harness::start_with(Backend::Sqlite, move |settings, _| {
        // Globally 10 s to connect (3 s to the first byte in the harness).
        settings.upstream_connect_timeout_ms = 10_000;
        let mut unreachable = channel("unreachable", &url, &["mock-gpt"], 10);
        unreachable.connect_timeout_ms = Some(200);
        settings.channels.push(unreachable);
    })
    .await;
    let (_, key) = h
        .user_with_key("connect", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let started = Instant::now();
    let response = h
        .chat(
            &key,
            json!({"model": "mock-gpt", "messages": user_says("hi")}),
        )
        .await;
    cost_of_answer(&h, response).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(1500),
        "gave up connecting after 200 ms, not 3 s: {elapsed:?}"
    );
    assert_eq!(h.health_of("unreachable").await.failures, 1);
    assert_eq!(presented_keys(&h.mock), ["mock-upstream-key"]);
    h.shutdown().await;
}
