//! `/v1/embeddings` and `/v1/completions` (legacy) through the same pipeline as chat:
//! routed, metered, billed and recorded the same way.

use crate::harness::*;
use serde_json::{Value, json};
use tokenhub::accounts::KeyOptions;
use tokenhub::ledger::money::Nanos;

async fn start() -> Harness {
    Harness::start_with(Backend::Sqlite, |settings, _| {
        settings.channels[0].models.push("mock-embed".into());
        settings.models.push(model("mock-embed", "1", "0"));
    })
    .await
}

async fn post(h: &Harness, key: &str, path: &str, body: Value) -> reqwest::Response {
    h.http
        .post(format!("{}/v1/{path}", h.base))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn embeddings_are_relayed_and_billed_by_input_tokens() {
    let h = start().await;
    let (user, key) = h
        .user_with_key("em", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let response = post(
        &h,
        &key,
        "embeddings",
        json!({"model": "mock-embed", "input": ["Hello world there", "again"]}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let id = request_id(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "list");
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    assert_eq!(body["usage"]["prompt_tokens"], 4);
    let record = h.record(&id).await;
    assert_eq!(
        (
            record.prompt_tokens,
            record.completion_tokens,
            record.stream
        ),
        (4, 0, false)
    );
    assert_eq!(record.cost, Nanos(4 * INPUT_NANO_PER_TOKEN));
    assert_eq!(
        h.stored_balance(user.id).await,
        Nanos::from_usd(1) - Nanos(4 * INPUT_NANO_PER_TOKEN)
    );
    assert_eq!(h.mock.journal().last().unwrap().path, "/v1/embeddings");
    h.shutdown().await;
}

#[tokio::test]
async fn embeddings_refuse_what_they_cannot_do() {
    let h = start().await;
    let (_, key) = h
        .user_with_key("en", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let cases = [
        (json!({"model": "mock-embed"}), 400, "input"),
        (
            json!({"model": "mock-embed", "input": {"a": 1}}),
            400,
            "input",
        ),
        (
            json!({"model": "mock-embed", "input": "x", "stream": true}),
            400,
            "stream",
        ),
        (
            json!({"model": "tokenhub-demo", "input": "x"}),
            400,
            "model",
        ),
    ];
    for (body, status, param) in cases {
        let response = post(&h, &key, "embeddings", body.clone()).await;
        assert_eq!(response.status(), status, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["param"], param, "{body}: {error}");
    }
    h.shutdown().await;
}

#[tokio::test]
async fn legacy_completions_stream_and_bill_like_chat() {
    let h = start().await;
    let (_, key) = h
        .user_with_key("co", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let response = post(
        &h,
        &key,
        "completions",
        json!({"model": "mock-gpt", "prompt": "Say hi"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let id = request_id(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["text"],
        "Hello from mock-upstream! You said: Say hi"
    );
    assert_eq!(h.record(&id).await.cost, cost_of(2, 7));

    let response = post(
        &h,
        &key,
        "completions",
        json!({"model": "mock-gpt", "prompt": "Say hi", "stream": true,
        "stream_options": {"include_usage": true}}),
    )
    .await;
    let id = request_id(&response);
    let data = sse_data(&response.text().await.unwrap());
    let chunks: Vec<Value> = data
        .iter()
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["text"].as_str())
        .collect();
    assert_eq!(text, "Hello from mock-upstream! You said: Say hi");
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 7);
    assert_eq!(data.last().unwrap(), "[DONE]");
    let record = h.record(&id).await;
    assert!(record.stream && !record.estimated);
    assert_eq!(record.cost, cost_of(2, 7));

    let response = post(
        &h,
        &key,
        "completions",
        json!({"model": "mock-gpt", "messages": []}),
    )
    .await;
    assert_eq!(response.status(), 400);
    h.shutdown().await;
}
