//! OpenAI Responses clients on `/v1/responses`: a real gateway translating to the relay's
//! chat pipeline, in front of the mock's OpenAI dialect (`mock-gpt`), and its Anthropic and
//! Gemini dialects. Billing is the relay's; stored responses belong to their user alone.

use crate::harness::*;
use mock_upstream::REPLY_PREFIX;
use serde_json::{Value, json};
use tokenhub::accounts::KeyOptions;
use tokenhub::ledger::money::Nanos;

const CLAUDE: &str = "claude-sonnet-4";
const CLAUDE_UPSTREAM: &str = "claude-sonnet-4-6";
const GEMINI: &str = "gemini-2.5-flash";

/// The harness's gateway plus a `claude` channel (Anthropic dialect) and a `gemini` one.
async fn start(backend: Backend) -> Harness {
    Harness::start_with(backend, |settings, mock_url| {
        let mut claude = channel("claude", &format!("{mock_url}/v1"), &[CLAUDE], 0);
        claude.kind = "anthropic".into();
        claude
            .model_map
            .insert(CLAUDE.into(), CLAUDE_UPSTREAM.into());
        settings.channels.push(claude);
        settings.models.push(model(CLAUDE, "3", "15"));
        let mut gemini = channel("gemini", mock_url, &[GEMINI], 0);
        gemini.kind = "gemini".into();
        gemini.api_key = Some("AIza-channel-key".into());
        gemini
            .model_map
            .insert(GEMINI.into(), "gemini-2.5-flash-lite".into());
        settings.channels.push(gemini);
        settings.models.push(model(GEMINI, "0.30", "2.50"));
    })
    .await
}

async fn post(h: &Harness, key: &str, body: Value) -> reqwest::Response {
    h.post(key, "/v1/responses", &body).await
}

async fn get(h: &Harness, key: &str, id: &str) -> reqwest::Response {
    h.get(key, &format!("/v1/responses/{id}")).await
}

async fn delete(h: &Harness, key: &str, id: &str) -> reqwest::Response {
    h.http
        .delete(format!("{}/v1/responses/{id}", h.base))
        .bearer_auth(key)
        .send()
        .await
        .expect("gateway answers")
}

/// The data of every event of a Responses SSE body, checking that `event:` repeats the type.
fn events(body: &str) -> Vec<Value> {
    body.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|event| {
            let name = event.lines().find_map(|l| l.strip_prefix("event: "));
            let data = event.lines().find_map(|l| l.strip_prefix("data: "));
            let data: Value = serde_json::from_str(data.expect("data line")).expect("JSON data");
            assert_eq!(
                data["type"],
                name.expect("event line"),
                "event name repeats the type"
            );
            data
        })
        .collect()
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

/// (2 words + 3) system + (2 words + 3) user, by the mock's counting rule.
const PROMPT: u64 = 10;
/// "Hello from mock-upstream! You said: hi there"
const REPLY_WORDS: u64 = 7;

#[tokio::test]
async fn non_stream_text_is_translated_stored_and_billed_once() {
    for backend in backends() {
        let h = start(backend).await;
        let (user, key) = h
            .user_with_key("ada", Nanos::from_usd(1), KeyOptions::default())
            .await;
        let response = post(
            &h,
            &key,
            json!({"model": "mock-gpt", "instructions": "be brief", "input": "hi there",
                "max_output_tokens": 100, "temperature": 0.5, "metadata": {"k": "v"},
                "reasoning": {"effort": "low"}, "mock": {"cached_tokens": 4}}),
        )
        .await;
        assert_eq!(response.status(), 200);
        let id = request_id(&response);
        let body: Value = response.json().await.unwrap();
        let response_id = body["id"].as_str().unwrap().to_string();
        assert!(response_id.starts_with("resp_"), "{body}");
        assert_eq!(
            (&body["object"], &body["status"], &body["model"]),
            (&json!("response"), &json!("completed"), &json!("mock-gpt"))
        );
        assert_eq!(
            (
                &body["instructions"],
                &body["metadata"],
                &body["max_output_tokens"]
            ),
            (&json!("be brief"), &json!({"k": "v"}), &json!(100))
        );
        let output = body["output"].as_array().unwrap();
        assert_eq!(output.len(), 1, "{body}");
        assert_eq!(output[0]["type"], "message");
        assert_eq!(output[0]["role"], "assistant");
        assert_eq!(
            output[0]["content"][0]["text"],
            format!("{REPLY_PREFIX}hi there")
        );
        assert_eq!(
            without_cost(&body["usage"]),
            json!({"input_tokens": PROMPT, "output_tokens": REPLY_WORDS,
                "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 0},
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": PROMPT + REPLY_WORDS})
        );

        let seen = h.mock.journal();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].path, "/v1/chat/completions");
        assert_eq!(
            seen[0].body,
            json!({"model": "mock-gpt",
                "messages": [{"role": "system", "content": "be brief"},
                             {"role": "user", "content": "hi there"}],
                "max_completion_tokens": 100, "temperature": 0.5, "reasoning_effort": "low",
                "mock": {"cached_tokens": 4}})
        );

        let record = h.record(&id).await;
        assert_eq!(
            (
                record.prompt_tokens,
                record.cached_tokens,
                record.completion_tokens
            ),
            (PROMPT, 4, REPLY_WORDS)
        );
        assert_eq!((record.status, record.stream), (200, false));
        assert_eq!(
            h.stored_balance(user.id).await,
            Nanos::from_usd(1) - record.cost
        );

        // Stored: the same object comes back, and reading it bills nothing.
        let stored = get(&h, &key, &response_id).await;
        assert_eq!(stored.status(), 200);
        assert_eq!(stored.json::<Value>().await.unwrap(), body);
        assert_eq!(
            h.stored_balance(user.id).await,
            Nanos::from_usd(1) - record.cost
        );
        h.shutdown().await;
    }
}

#[tokio::test]
async fn stream_emits_openai_events_in_order_and_stores_the_result() {
    let h = start(Backend::Sqlite).await;
    let (_, key) = h
        .user_with_key("ada", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let response = post(
        &h,
        &key,
        json!({"model": "mock-gpt", "input": [{"role": "user", "content": [
            {"type": "input_text", "text": "hi there"}]}], "stream": true,
            "mock": {"reasoning": "think first", "chunks": 3}}),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let id = request_id(&response);
    let events = events(&response.text().await.unwrap());
    let numbers: Vec<u64> = events
        .iter()
        .map(|e| e["sequence_number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, (0..events.len() as u64).collect::<Vec<_>>());
    let kinds = kinds(&events);
    assert_eq!(&kinds[..2], ["response.created", "response.in_progress"]);
    assert_eq!(kinds.last(), Some(&"response.completed"));
    let text: String = events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, format!("{REPLY_PREFIX}hi there"));
    let message_events: Vec<&str> = kinds
        .iter()
        .copied()
        .filter(|k| !k.ends_with(".delta") && !k.contains("reasoning"))
        .collect();
    assert_eq!(
        message_events,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added", // the reasoning item
            "response.output_item.done",
            "response.output_item.added", // the message
            "response.content_part.added",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    assert!(kinds.contains(&"response.reasoning_summary_text.delta"));
    let completed = &events.last().unwrap()["response"];
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["output"][0]["type"], "reasoning");
    assert_eq!(completed["output"][0]["summary"][0]["text"], "think first");
    assert_eq!(completed["output"][1]["content"][0]["text"], text);
    let record = h.record_eventually(&id).await;
    assert!(record.stream);
    assert_eq!(completed["usage"]["input_tokens"], record.prompt_tokens);
    assert_eq!(
        completed["usage"]["output_tokens"],
        record.completion_tokens
    );

    let stored: Value = get(&h, &key, completed["id"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(&stored, completed);
    h.shutdown().await;
}

#[tokio::test]
async fn function_calls_round_trip_through_previous_response_id() {
    let h = start(Backend::Sqlite).await;
    let (_, key) = h
        .user_with_key("ada", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let tools = json!([{"type": "function", "name": "get_weather", "description": "weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    for stream in [false, true] {
        let before = h.mock.journal().len();
        let first = post(
            &h,
            &key,
            json!({"model": "mock-gpt", "input": "weather in Paris?", "tools": tools,
                "tool_choice": {"type": "function", "name": "get_weather"}, "stream": stream,
                "mock": {"tool_call": {"name": "get_weather", "arguments": {"city": "Paris"},
                                       "pieces": 3}}}),
        )
        .await;
        assert_eq!(first.status(), 200);
        let first = if stream {
            let events = events(&first.text().await.unwrap());
            let kinds = kinds(&events);
            assert!(kinds.contains(&"response.function_call_arguments.delta"));
            let done = events
                .iter()
                .find(|e| e["type"] == "response.function_call_arguments.done")
                .expect("arguments done");
            assert_eq!(done["arguments"], r#"{"city":"Paris"}"#);
            events.last().unwrap()["response"].clone()
        } else {
            first.json::<Value>().await.unwrap()
        };
        let call = &first["output"][0];
        assert_eq!(
            (&call["type"], &call["name"], &call["status"]),
            (
                &json!("function_call"),
                &json!("get_weather"),
                &json!("completed")
            ),
            "{first}"
        );
        let arguments: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(arguments, json!({"city": "Paris"}));
        let call_id = call["call_id"].as_str().unwrap();
        assert_eq!(
            h.mock.journal()[before].body["tool_choice"],
            json!({"type": "function", "function": {"name": "get_weather"}})
        );
        assert_eq!(
            h.mock.journal()[before].body["tools"][0]["function"]["name"],
            "get_weather"
        );

        let second = post(
            &h,
            &key,
            json!({"model": "mock-gpt", "previous_response_id": first["id"], "tools": tools,
                "input": [{"type": "function_call_output", "call_id": call_id,
                           "output": "sunny, 21C"}],
                "mock": {"echo_tool_result": true}}),
        )
        .await;
        assert_eq!(second.status(), 200);
        let second: Value = second.json().await.unwrap();
        assert_eq!(second["previous_response_id"], first["id"]);
        let replayed = &h.mock.journal()[before + 1].body["messages"];
        assert_eq!(
            replayed,
            &json!([
                {"role": "user", "content": "weather in Paris?"},
                {"role": "assistant", "content": null, "tool_calls": [{"id": call_id,
                    "type": "function", "function": {"name": "get_weather",
                    "arguments": call["arguments"]}}]},
                {"role": "tool", "tool_call_id": call_id, "content": "sunny, 21C"},
            ])
        );
        let text = second["output"][0]["content"][0]["text"].as_str().unwrap();
        assert!(text.contains("sunny, 21C"), "{second}");
    }
    h.shutdown().await;
}

#[tokio::test]
async fn a_chain_replays_earlier_turns_but_not_their_instructions() {
    let h = start(Backend::Sqlite).await;
    let (_, key) = h
        .user_with_key("ada", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let first: Value = post(
        &h,
        &key,
        json!({"model": "mock-gpt", "instructions": "first rules", "input": "one"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let second: Value = post(
        &h,
        &key,
        json!({"model": "mock-gpt", "instructions": "second rules", "input": "two",
            "previous_response_id": first["id"]}),
    )
    .await
    .json()
    .await
    .unwrap();
    let third = post(
        &h,
        &key,
        json!({"model": "mock-gpt", "input": "three", "previous_response_id": second["id"],
            "store": false}),
    )
    .await;
    assert_eq!(third.status(), 200);
    let third: Value = third.json().await.unwrap();
    assert_eq!(third["store"], false);
    let reply =
        |text: &str| json!({"role": "assistant", "content": format!("{REPLY_PREFIX}{text}")});
    let journal = h.mock.journal();
    assert_eq!(
        journal[2].body["messages"],
        json!([
            {"role": "user", "content": "one"}, reply("one"),
            {"role": "user", "content": "two"}, reply("two"),
            {"role": "user", "content": "three"},
        ])
    );
    assert_eq!(
        journal[1].body["messages"][0],
        json!({"role": "system", "content": "second rules"})
    );
    // `store: false` keeps nothing.
    let missing = get(&h, &key, third["id"].as_str().unwrap()).await;
    assert_eq!(missing.status(), 404);
    h.shutdown().await;
}

#[tokio::test]
async fn another_user_can_never_read_continue_or_delete_a_stored_response() {
    for backend in backends() {
        let h = start(backend).await;
        let (_, ada) = h
            .user_with_key("ada", Nanos::from_usd(1), KeyOptions::default())
            .await;
        let (bob_user, bob) = h
            .user_with_key("bob", Nanos::from_usd(1), KeyOptions::default())
            .await;
        let created: Value = post(&h, &ada, json!({"model": "mock-gpt", "input": "secret"}))
            .await
            .json()
            .await
            .unwrap();
        let id = created["id"].as_str().unwrap();

        let read = get(&h, &bob, id).await;
        assert_eq!(read.status(), 404);
        let read: Value = read.json().await.unwrap();
        assert_eq!(read["error"]["type"], "invalid_request_error");
        assert!(!read.to_string().contains("secret"));
        // Exactly the answer for an id that never existed.
        let unknown: Value = get(&h, &bob, "resp_0000").await.json().await.unwrap();
        assert_eq!(
            read["error"]["message"].as_str().unwrap().replace(id, "X"),
            unknown["error"]["message"]
                .as_str()
                .unwrap()
                .replace("resp_0000", "X")
        );

        let before = h.mock.journal().len();
        let continued = post(
            &h,
            &bob,
            json!({"model": "mock-gpt", "input": "go on", "previous_response_id": id}),
        )
        .await;
        assert_eq!(continued.status(), 404);
        let continued: Value = continued.json().await.unwrap();
        assert_eq!(continued["error"]["param"], "previous_response_id");
        assert_eq!(
            h.mock.journal().len(),
            before,
            "nothing reached the upstream"
        );
        assert_eq!(h.stored_balance(bob_user.id).await, Nanos::from_usd(1));

        assert_eq!(delete(&h, &bob, id).await.status(), 404);
        assert_eq!(get(&h, &ada, id).await.status(), 200, "bob deleted nothing");

        let deleted = delete(&h, &ada, id).await;
        assert_eq!(deleted.status(), 200);
        assert_eq!(
            deleted.json::<Value>().await.unwrap(),
            json!({"id": id, "object": "response", "deleted": true})
        );
        assert_eq!(get(&h, &ada, id).await.status(), 404);
        assert_eq!(delete(&h, &ada, id).await.status(), 404);
        h.shutdown().await;
    }
}

#[tokio::test]
async fn tools_only_openai_runs_are_refused_before_the_upstream() {
    let h = start(Backend::Sqlite).await;
    let (_, key) = h
        .user_with_key("ada", Nanos::from_usd(1), KeyOptions::default())
        .await;
    for tool in ["web_search", "file_search", "computer_use_preview"] {
        let response = post(
            &h,
            &key,
            json!({"model": "mock-gpt", "input": "hi", "tools": [{"type": tool}]}),
        )
        .await;
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["param"], "tools");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(tool),
            "{body}"
        );
    }
    assert!(h.mock.journal().is_empty());
    h.shutdown().await;
}

#[tokio::test]
async fn json_schema_and_limits_reach_the_chat_request() {
    let h = start(Backend::Sqlite).await;
    let (_, key) = h
        .user_with_key("ada", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let schema = json!({"type": "object", "properties": {"a": {"type": "string"}},
        "required": ["a"], "additionalProperties": false});
    let response = post(
        &h,
        &key,
        json!({"model": "mock-gpt", "input": "hi", "max_output_tokens": 3,
            "text": {"format": {"type": "json_schema", "name": "thing", "schema": schema,
                                "strict": true}},
            "mock": {"finish_reason": "length"}}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "incomplete");
    assert_eq!(
        body["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
    assert_eq!(body["text"]["format"]["name"], "thing");
    assert_eq!(
        h.mock.journal()[0].body["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "thing", "schema": schema,
            "strict": true}})
    );
    h.shutdown().await;
}

#[tokio::test]
async fn anthropic_and_gemini_channels_answer_in_the_responses_shape() {
    let h = start(Backend::Sqlite).await;
    let (_, key) = h
        .user_with_key("ada", Nanos::from_usd(1), KeyOptions::default())
        .await;
    for (model, path_part) in [(CLAUDE, "/v1/messages"), (GEMINI, "enerateContent")] {
        for stream in [false, true] {
            let before = h.mock.journal().len();
            let response = post(
                &h,
                &key,
                json!({"model": model, "input": "hi there", "instructions": "be brief",
                    "max_output_tokens": 50, "stream": stream}),
            )
            .await;
            assert_eq!(response.status(), 200, "{model}");
            let id = request_id(&response);
            let body = if stream {
                let events = events(&response.text().await.unwrap());
                assert_eq!(
                    events.last().unwrap()["type"],
                    "response.completed",
                    "{model}"
                );
                events.last().unwrap()["response"].clone()
            } else {
                response.json::<Value>().await.unwrap()
            };
            assert_eq!(body["model"], model);
            assert_eq!(
                body["output"][0]["content"][0]["text"],
                format!("{REPLY_PREFIX}hi there"),
                "{model}: {body}"
            );
            assert!(h.mock.journal()[before].path.contains(path_part), "{model}");
            let record = h.record_eventually(&id).await;
            assert_eq!(record.model, model);
            assert_eq!(
                body["usage"]["input_tokens"], record.prompt_tokens,
                "{model}"
            );
            assert_eq!(
                body["usage"]["output_tokens"], record.completion_tokens,
                "{model}"
            );
        }
    }
    h.shutdown().await;
}

#[tokio::test]
async fn input_tokens_counts_the_translated_prompt() {
    let h = start(Backend::Sqlite).await;
    let (_, key) = h
        .user_with_key("ada", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let response = h
        .http
        .post(format!("{}/v1/responses/input_tokens", h.base))
        .bearer_auth(&key)
        .json(&json!({"model": "mock-gpt", "input": "hello there, how are you?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "response.input_tokens");
    let tokens = body["input_tokens"].as_u64().unwrap();
    assert!((5..30).contains(&tokens), "{body}");
    assert!(h.mock.journal().is_empty());
    h.shutdown().await;
}

#[tokio::test]
async fn responses_past_their_retention_are_gone_and_purged() {
    for backend in backends() {
        let h =
            Harness::start_with(backend, |settings, _| settings.responses_retention_days = 0).await;
        let (user, key) = h
            .user_with_key("ada", Nanos::from_usd(1), KeyOptions::default())
            .await;
        let created = post(&h, &key, json!({"model": "mock-gpt", "input": "hi"})).await;
        assert_eq!(created.status(), 200);
        let created: Value = created.json().await.unwrap();
        let id = created["id"].as_str().unwrap();
        assert_eq!(get(&h, &key, id).await.status(), 404);
        let continued = post(
            &h,
            &key,
            json!({"model": "mock-gpt", "input": "more", "previous_response_id": id}),
        )
        .await;
        assert_eq!(continued.status(), 404);

        let store = &h.gateway().store;
        let keep = tokenhub::store::NewStoredResponse {
            id: "resp_kept",
            user_id: user.id,
            key_id: 0,
            response: "{}",
            previous_id: None,
            input_items: "[]",
            expires_at: i64::MAX,
            native: false,
        };
        store.save_response(keep).await.unwrap();
        assert_eq!(store.purge_expired_responses().await.unwrap(), 1);
        assert!(
            store
                .stored_response(user.id, "resp_kept")
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .stored_response(user.id + 1, "resp_kept")
                .await
                .unwrap()
                .is_none()
        );
        h.shutdown().await;
    }
}
