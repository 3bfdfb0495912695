//! A native Responses upstream (`responses_native`) whose final Response reports no
//! usage, or usage that is not numbers: the answer still reaches the client, the request
//! is billed by the local count (`estimated`), and it leaves its one record.

use crate::harness::*;
use serde_json::{Value, json};
use tokenhub::accounts::KeyOptions;
use tokenhub::ledger::money::Nanos;

const NATIVE: &str = "gpt-native";

async fn start() -> Harness {
    Harness::start_with(Backend::Sqlite, |settings, mock_url| {
        let mut native = channel("openai-native", &format!("{mock_url}/v1"), &[NATIVE], 0);
        native.responses_native = true;
        settings.channels.push(native);
        settings.models.push(model(NATIVE, "2", "8"));
    })
    .await
}

/// What the upstream reports instead of its counted usage: nothing, or garbage.
fn reports() -> Vec<(&'static str, Value)> {
    vec![
        ("missing", json!({"usage": false})),
        (
            "null",
            json!({"usage_override": {"input_tokens": null, "output_tokens": null}}),
        ),
        (
            "not numbers",
            json!({"usage_override": {"input_tokens": "many", "output_tokens": {"n": 3},
                "input_tokens_details": {"cached_tokens": "all"}}}),
        ),
        (
            "negative",
            json!({"usage_override": {"input_tokens": -5, "output_tokens": 1.5}}),
        ),
        ("not an object", json!({"usage_override": "plenty"})),
    ]
}

#[tokio::test]
async fn a_native_answer_without_usable_usage_is_billed_by_the_local_count() {
    let h = start().await;
    let (user, key) = h
        .user_with_key("ada", Nanos::from_usd(1), KeyOptions::default())
        .await;
    for (what, knobs) in reports() {
        for stream in [false, true] {
            let request = json!({"model": NATIVE, "input": "count these four words",
                "stream": stream, "mock": knobs});
            let response = h
                .http
                .post(format!("{}/v1/responses", h.base))
                .bearer_auth(&key)
                .json(&request)
                .send()
                .await
                .unwrap();
            let status = response.status();
            let id = request_id(&response);
            let text = response.text().await.unwrap();
            assert_eq!(status, 200, "{what}, stream {stream}: {text}");
            if stream {
                assert!(
                    text.contains("event: response.completed") && !text.contains("event: error"),
                    "{what}: the completed stream is relayed as it is: {text}"
                );
            } else {
                let body: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(body["status"], "completed", "{what}: {body}");
            }
            let record = h.record_eventually(&id).await;
            assert_eq!(
                (record.status, record.estimated, record.error.as_deref()),
                (200, true, None),
                "{what}, stream {stream}: {record:?}"
            );
            assert!(
                record.prompt_tokens > 0
                    && record.completion_tokens > 0
                    && record.cost > Nanos::ZERO,
                "{what}, stream {stream}: counted locally: {record:?}"
            );
        }
    }
    h.gateway().writer.flush().await;
    assert_eq!(
        h.gateway().store.recomputed_balance(user.id).await.unwrap(),
        h.stored_balance(user.id).await
    );
    h.shutdown().await;
}

/// A stream whose events are valid but for a member of the wrong type (a `sequence_number`
/// that is not a number, a text delta that is not a string) is relayed as the upstream sent
/// it, completes, and is billed from the usage its final event reports.
#[tokio::test]
async fn a_native_stream_with_odd_members_is_relayed_as_sent_and_billed_from_its_usage() {
    let h = start().await;
    let (user, key) = h
        .user_with_key("ada", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let odd_events = [
        (
            "sequence",
            json!({"response.completed": {"sequence_number": "last"}}),
        ),
        (
            "delta",
            json!({"response.output_text.delta": {"delta": 42}}),
        ),
        (
            "both",
            json!({"response.completed": {"sequence_number": 1.5},
                "response.output_text.delta": {"delta": {"text": "hi"}}}),
        ),
    ];
    for (what, members) in odd_events {
        let request = json!({"model": NATIVE, "input": "count these four words",
            "stream": true, "mock": {"event_members": members,
            "usage_override": {"input_tokens": 11, "output_tokens": 7}}});
        let response = h
            .http
            .post(format!("{}/v1/responses", h.base))
            .bearer_auth(&key)
            .json(&request)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{what}");
        let id = request_id(&response);
        let text = response.text().await.unwrap();
        assert!(!text.contains("event: error"), "{what}: not broken: {text}");
        let events = sse_data(&text);
        let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
        assert_eq!(last["type"], "response.completed", "{what}: {text}");
        for (kind, members) in members.as_object().unwrap() {
            let relayed = events
                .iter()
                .map(|data| serde_json::from_str::<Value>(data).unwrap())
                .find(|event| event["type"] == kind.as_str())
                .unwrap();
            for (name, value) in members.as_object().unwrap() {
                assert_eq!(&relayed[name], value, "{what}: {kind}.{name} as sent");
            }
        }
        let record = h.record_eventually(&id).await;
        assert_eq!(
            (record.status, record.estimated, record.error.as_deref()),
            (200, false, None),
            "{what}: {record:?}"
        );
        assert_eq!(
            (record.prompt_tokens, record.completion_tokens),
            (11, 7),
            "{what}: billed from the usage"
        );
        assert_eq!(
            last["response"]["usage"]["tokenhub"]["cost_usd"],
            record.cost.to_usd_string().as_str(),
            "{what}: the final event carries the cost"
        );
    }
    h.gateway().writer.flush().await;
    assert_eq!(
        h.gateway().store.recomputed_balance(user.id).await.unwrap(),
        h.stored_balance(user.id).await
    );
    h.shutdown().await;
}
