//! `/v1/responses` on a channel that serves the Responses API natively
//! (`responses_native`): the body and the answer pass through unchanged, the usage
//! record is the upstream's Responses usage, and a stored response is its user's alone
//! even though every user shares the upstream key.

use crate::harness::*;
use mock_upstream::REPLY_PREFIX;
use serde_json::{Value, json};
use tokenhub::accounts::KeyOptions;
use tokenhub::ledger::money::Nanos;

pub(crate) const NATIVE: &str = "gpt-native";

/// The harness's gateway plus a native channel serving `gpt-native`.
pub(crate) async fn start(backend: Backend) -> Harness {
    Harness::start_with(backend, |settings, mock_url| {
        let mut native = channel("openai-native", &format!("{mock_url}/v1"), &[NATIVE], 0);
        native.responses_native = true;
        settings.channels.push(native);
        settings.models.push(model(NATIVE, "2", "8"));
    })
    .await
}

async fn post(h: &Harness, key: &str, body: &Value) -> reqwest::Response {
    h.post(key, "/v1/responses", body).await
}

async fn get(h: &Harness, key: &str, id: &str) -> reqwest::Response {
    h.get(key, &format!("/v1/responses/{id}")).await
}

#[tokio::test]
async fn native_non_stream_passes_through_with_hosted_tools_and_bills_its_usage() {
    for backend in backends() {
        let h = start(backend).await;
        let (user, key) = h
            .user_with_key("ada", Nanos::from_usd(1), KeyOptions::default())
            .await;
        let request = json!({"model": NATIVE, "instructions": "be brief", "input": "hi there",
            "tools": [{"type": "web_search"}], "include": ["web_search_call.action.sources"],
            "mock": {"cached_tokens": 2, "reasoning": "think it over"}});
        let response = post(&h, &key, &request).await;
        assert_eq!(response.status(), 200);
        let id = request_id(&response);
        let body: Value = response.json().await.unwrap();
        assert!(
            body["id"].as_str().unwrap().starts_with("resp_mock_"),
            "{body}"
        );
        let output = body["output"].as_array().unwrap();
        assert_eq!(
            output[0]["type"], "web_search_call",
            "hosted tool ran upstream"
        );
        assert_eq!(
            output[1]["content"][0]["text"],
            format!("{REPLY_PREFIX}hi there")
        );

        let seen = h.mock.journal();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].path, "/v1/responses");
        assert_eq!(seen[0].body, request, "the body reaches OpenAI unchanged");

        // input: "be brief" + "hi there" = 4 words; output: 7 reply + 3 reasoning words.
        let usage = &body["usage"];
        assert_eq!(
            (
                &usage["input_tokens"],
                &usage["input_tokens_details"]["cached_tokens"]
            ),
            (&json!(4), &json!(2))
        );
        assert_eq!(
            (
                &usage["output_tokens"],
                &usage["output_tokens_details"]["reasoning_tokens"]
            ),
            (&json!(10), &json!(3))
        );
        let record = h.record(&id).await;
        assert_eq!(
            (
                record.prompt_tokens,
                record.cached_tokens,
                record.completion_tokens
            ),
            (4, 2, 10)
        );
        assert_eq!(
            (record.status, record.stream, record.estimated),
            (200, false, false)
        );
        assert!(record.cost > Nanos(0));
        assert_eq!(
            h.stored_balance(user.id).await,
            Nanos::from_usd(1) - record.cost
        );
        h.shutdown().await;
    }
}

#[tokio::test]
async fn native_stream_relays_openai_events_unchanged_and_meters_the_completed_usage() {
    for backend in backends() {
        let h = start(backend).await;
        let (user, key) = h
            .user_with_key("ada", Nanos::from_usd(1), KeyOptions::default())
            .await;
        let request = json!({"model": NATIVE, "input": "stream me please", "stream": true,
            "mock": {"chunks": 3, "cached_tokens": 1, "reasoning": "two words"}});
        let response = post(&h, &key, &request).await;
        assert_eq!(response.status(), 200);
        let id = request_id(&response);
        let text = response.text().await.unwrap();

        let events: Vec<(&str, Value)> = text
            .split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|event| {
                let (name, data) = event.split_once('\n').expect("event: then data:");
                let name = name.strip_prefix("event: ").expect("OpenAI's event line");
                let data: Value =
                    serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
                (name, data)
            })
            .collect();
        for (n, (name, data)) in events.iter().enumerate() {
            assert_eq!(data["type"], *name);
            assert_eq!(data["sequence_number"], n, "nothing added or dropped");
        }
        assert_eq!(events.first().unwrap().0, "response.created");
        let (last, completed) = events.last().unwrap();
        assert_eq!(*last, "response.completed");
        let deltas: String = events
            .iter()
            .filter(|(name, _)| *name == "response.output_text.delta")
            .map(|(_, d)| d["delta"].as_str().unwrap())
            .collect();
        assert_eq!(deltas, format!("{REPLY_PREFIX}stream me please"));
        assert!(!text.contains("[DONE]") && !text.contains("chat.completion"));

        let usage = &completed["response"]["usage"];
        let record = h.record_eventually(&id).await;
        assert_eq!(
            (
                record.prompt_tokens,
                record.cached_tokens,
                record.completion_tokens
            ),
            (
                usage["input_tokens"].as_u64().unwrap(),
                1,
                usage["output_tokens"].as_u64().unwrap()
            )
        );
        assert_eq!((record.prompt_tokens, record.completion_tokens), (3, 10));
        assert_eq!(
            (record.status, record.stream, record.estimated),
            (200, true, false)
        );
        assert_eq!(
            h.stored_balance(user.id).await,
            Nanos::from_usd(1) - record.cost
        );

        // No stream_options.include_usage was sent (the Responses API refuses it).
        assert_eq!(h.mock.journal()[0].body, request);
        h.shutdown().await;
    }
}

#[tokio::test]
async fn a_native_response_is_continued_only_by_its_own_user() {
    for backend in backends() {
        let h = start(backend).await;
        let (_, ada) = h
            .user_with_key("ada", Nanos::from_usd(1), KeyOptions::default())
            .await;
        let (bob_user, bob) = h
            .user_with_key("bob", Nanos::from_usd(1), KeyOptions::default())
            .await;
        let first: Value = post(&h, &ada, &json!({"model": NATIVE, "input": "my secret"}))
            .await
            .json()
            .await
            .unwrap();
        let id = first["id"].as_str().unwrap();

        // Bob, through the same upstream key: refused before any upstream, as unknown.
        let before = h.mock.journal().len();
        for stream in [false, true] {
            let refused = post(
                &h,
                &bob,
                &json!({"model": NATIVE, "input": "go on", "previous_response_id": id,
                    "stream": stream}),
            )
            .await;
            assert_eq!(refused.status(), 404);
            let refused: Value = refused.json().await.unwrap();
            assert_eq!(refused["error"]["param"], "previous_response_id");
            assert!(!refused.to_string().contains("secret"));
        }
        let unknown = post(
            &h,
            &bob,
            &json!({"model": NATIVE, "input": "go on", "previous_response_id": "resp_nope"}),
        )
        .await;
        assert_eq!(unknown.status(), 404);
        assert_eq!(
            h.mock.journal().len(),
            before,
            "nothing reached the upstream"
        );
        assert_eq!(get(&h, &bob, id).await.status(), 404);
        assert_eq!(h.stored_balance(bob_user.id).await, Nanos::from_usd(1));

        // Ada continues it: the id goes upstream as she sent it.
        let next = json!({"model": NATIVE, "input": "go on", "previous_response_id": id});
        let continued = post(&h, &ada, &next).await;
        assert_eq!(continued.status(), 200);
        let continued: Value = continued.json().await.unwrap();
        assert_eq!(continued["previous_response_id"], id);
        assert_eq!(h.mock.journal().last().unwrap().body, next);
        assert_eq!(
            get(&h, &ada, id).await.json::<Value>().await.unwrap(),
            first
        );

        // A streamed native response is recorded as hers too, before its last event.
        let streamed = post(
            &h,
            &ada,
            &json!({"model": NATIVE, "input": "again", "stream": true}),
        )
        .await
        .text()
        .await
        .unwrap();
        let completed = streamed
            .split("\n\n")
            .filter(|e| !e.is_empty())
            .last()
            .unwrap();
        let completed: Value =
            serde_json::from_str(completed.split_once("data: ").unwrap().1).unwrap();
        let streamed_id = completed["response"]["id"].as_str().unwrap();
        assert_eq!(get(&h, &ada, streamed_id).await.status(), 200);
        assert_eq!(get(&h, &bob, streamed_id).await.status(), 404);
        let refused = post(
            &h,
            &bob,
            &json!({"model": NATIVE, "input": "x", "previous_response_id": streamed_id}),
        )
        .await;
        assert_eq!(refused.status(), 404);

        // A store:false answer is not recorded, so nobody can continue it.
        let unstored: Value = post(
            &h,
            &ada,
            &json!({"model": NATIVE, "input": "x", "store": false}),
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(
            get(&h, &ada, unstored["id"].as_str().unwrap())
                .await
                .status(),
            404
        );
        h.shutdown().await;
    }
}

#[tokio::test]
async fn hosted_tools_are_refused_where_no_channel_runs_them() {
    let h = start(Backend::Sqlite).await;
    let (_, key) = h
        .user_with_key("ada", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let hosted =
        |model: &str| json!({"model": model, "input": "hi", "tools": [{"type": "file_search"}]});
    let refused = post(&h, &key, &hosted("mock-gpt")).await;
    assert_eq!(refused.status(), 400);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["error"]["param"], "tools");
    assert!(h.mock.journal().is_empty());
    assert_eq!(post(&h, &key, &hosted(NATIVE)).await.status(), 200);
    assert_eq!(h.mock.journal()[0].path, "/v1/responses");
    h.shutdown().await;
}

#[tokio::test]
async fn a_failed_or_broken_native_stream_is_recorded_as_failed_and_ends_with_an_error_event() {
    let h = start(Backend::Sqlite).await;
    let (user, key) = h
        .user_with_key("ada", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let failed = post(
        &h,
        &key,
        &json!({"model": NATIVE, "input": "x", "stream": true,
            "mock": {"mid_stream_error": true, "error_message": "overloaded"}}),
    )
    .await;
    let id = request_id(&failed);
    let text = failed.text().await.unwrap();
    assert!(text.trim_end().ends_with('}') && text.contains("event: response.failed"));
    let record = h.record_eventually(&id).await;
    assert_eq!(record.error.as_deref(), Some("overloaded"));

    // Cut after three events: the gateway ends the stream with OpenAI's error event,
    // numbered after the last relayed one.
    let broken = post(
        &h,
        &key,
        &json!({"model": NATIVE, "input": "y", "stream": true, "mock": {"drop_after_chunks": 3}}),
    )
    .await;
    let id = request_id(&broken);
    let text = broken.text().await.unwrap();
    let last = text.split("\n\n").filter(|e| !e.is_empty()).last().unwrap();
    let (name, data) = last.split_once('\n').unwrap();
    assert_eq!(name, "event: error");
    let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(
        (&data["type"], &data["sequence_number"]),
        (&json!("error"), &json!(3))
    );
    let record = h.record_eventually(&id).await;
    assert!(record.error.is_some() && record.estimated, "{record:?}");
    assert!(record.prompt_tokens > 0);
    h.gateway().writer.flush().await;
    assert_eq!(
        h.gateway().store.recomputed_balance(user.id).await.unwrap(),
        h.stored_balance(user.id).await
    );
    h.shutdown().await;
}

/// The last event of a native stream, as `(event name, data)`.
fn final_event(body: &str) -> (String, Value) {
    let last = body.split("\n\n").filter(|e| !e.is_empty()).last().unwrap();
    let (name, data) = last.split_once('\n').expect("event: then data:");
    let data = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
    (name.to_string(), data)
}

#[tokio::test]
async fn native_answers_carry_the_recorded_cost_stream_or_not() {
    for backend in backends() {
        let h = start(backend).await;
        let (_, key) = h
            .user_with_key("ada", Nanos::from_usd(1), KeyOptions::default())
            .await;
        let mut balance = Nanos::from_usd(1);
        for stream in [false, true] {
            let request = json!({"model": NATIVE, "input": "what does it cost",
                "stream": stream, "mock": {"cached_tokens": 1}});
            let response = post(&h, &key, &request).await;
            assert_eq!(response.status(), 200);
            let (id, header) = (request_id(&response), cost_header(&response));
            let answer = if stream {
                assert_eq!(header, None, "a stream's cost is in its final event");
                let (name, data) = final_event(&response.text().await.unwrap());
                assert_eq!(name, "event: response.completed");
                data["response"].clone()
            } else {
                response.json::<Value>().await.unwrap()
            };
            let record = h.record_eventually(&id).await;
            balance -= record.cost;
            assert_charge(&answer["usage"], header.as_deref(), record.cost, balance);
            assert_eq!(
                answer["usage"]["input_tokens"].as_u64(),
                Some(record.prompt_tokens)
            );
            // Stored as answered, cost included.
            let stored = get(&h, &key, answer["id"].as_str().unwrap()).await;
            assert_eq!(stored.json::<Value>().await.unwrap(), answer);
        }
        h.shutdown().await;
    }
}
