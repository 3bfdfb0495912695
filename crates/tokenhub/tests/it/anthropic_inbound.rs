//! Anthropic clients on `POST /v1/messages`: a real gateway translating to the relay's
//! OpenAI pipeline, in front of the mock's OpenAI dialect (`mock-gpt`) and, for tool
//! calls (which only the mock's Messages dialect can produce), an `anthropic` channel.
//! The client sees Anthropic's format only; billing is the relay's as usual.

use crate::harness::*;
use mock_upstream::REPLY_PREFIX;
use serde_json::{Value, json};
use tokenhub::accounts::KeyOptions;
use tokenhub::ledger::money::Nanos;

const CLAUDE: &str = "claude-sonnet-4";
/// A live Anthropic id: the mock refuses retired ones, as Anthropic does.
const CLAUDE_UPSTREAM: &str = "claude-sonnet-4-6";

/// The harness's gateway plus a `claude` channel speaking Anthropic to the mock.
async fn start() -> Harness {
    Harness::start_with(Backend::Sqlite, |settings, mock_url| {
        let mut claude = channel("claude", &format!("{mock_url}/v1"), &[CLAUDE], 0);
        claude.kind = "anthropic".into();
        claude
            .model_map
            .insert(CLAUDE.into(), CLAUDE_UPSTREAM.into());
        settings.channels.push(claude);
        settings.models.push(model(CLAUDE, "3", "15"));
    })
    .await
}

async fn messages(h: &Harness, key: &str, body: Value) -> reqwest::Response {
    h.http
        .post(format!("{}/v1/messages", h.base))
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "prompt-caching-2024-07-31")
        .json(&body)
        .send()
        .await
        .expect("gateway answers")
}

/// `(event name, data)` of every event of an Anthropic SSE body.
fn events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|event| {
            let name = event.lines().find_map(|l| l.strip_prefix("event: "));
            let data = event.lines().find_map(|l| l.strip_prefix("data: "));
            let data: Value = serde_json::from_str(data.expect("data line")).expect("JSON data");
            let name = name.expect("event line").to_string();
            assert_eq!(data["type"], name.as_str(), "event name repeats the type");
            (name, data)
        })
        .collect()
}

/// (2 words + 3) system + (2 words + 3) user, by the mock's counting rule.
const PROMPT: u64 = 10;
/// "Hello from mock-upstream! You said: hi there"
const REPLY_WORDS: u64 = 7;

#[tokio::test]
async fn non_stream_message_is_translated_and_billed() {
    let h = start().await;
    let (user, key) = h
        .user_with_key("ada", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let request = json!({"model": "mock-gpt", "max_tokens": 100, "system": "be brief",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi there"}]}],
        "stop_sequences": ["END"], "top_k": 5, "metadata": {"user_id": "u-1"},
        "mock": {"cached_tokens": 4}});
    let response = messages(&h, &key, request).await;
    assert_eq!(response.status(), 200);
    let id = request_id(&response);
    assert_eq!(response.headers()["request-id"].to_str().unwrap(), id);
    let body: Value = response.json().await.unwrap();
    assert!(body["id"].as_str().unwrap().starts_with("msg_"), "{body}");
    assert_eq!(
        (&body["type"], &body["role"], &body["stop_reason"]),
        (&json!("message"), &json!("assistant"), &json!("end_turn"))
    );
    assert_eq!(
        body["content"],
        json!([{"type": "text", "text": format!("{REPLY_PREFIX}hi there")}])
    );
    assert_eq!(
        without_cost(&body["usage"]),
        json!({"input_tokens": PROMPT - 4, "cache_read_input_tokens": 4,
               "cache_creation_input_tokens": 0, "output_tokens": REPLY_WORDS})
    );

    let seen = h.mock.journal();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/v1/chat/completions");
    assert_eq!(
        seen[0].body,
        json!({"model": "mock-gpt",
               "messages": [{"role": "system", "content": "be brief"},
                            {"role": "user", "content": "hi there"}],
               "max_tokens": 100, "stop": ["END"], "user": "u-1", "top_k": 5,
               "mock": {"cached_tokens": 4}})
    );

    let record = h.record(&id).await;
    assert_eq!(record.model, "mock-gpt");
    assert_eq!(
        (
            record.prompt_tokens,
            record.cached_tokens,
            record.completion_tokens
        ),
        (PROMPT, 4, REPLY_WORDS)
    );
    assert_eq!(
        (record.cost, record.estimated, record.status, record.stream),
        (cost_of(PROMPT, REPLY_WORDS), false, 200, false)
    );
    assert_eq!(
        h.stored_balance(user.id).await,
        Nanos::from_usd(1) - cost_of(PROMPT, REPLY_WORDS)
    );
    h.shutdown().await;
}

#[tokio::test]
async fn stream_emits_events_in_order_with_usage_last() {
    let h = start().await;
    let (_, key) = h
        .user_with_key("bo", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let request = json!({"model": "mock-gpt", "max_tokens": 100, "stream": true,
        "system": [{"type": "text", "text": "be brief"}],
        "messages": [{"role": "user", "content": "hi there"}], "mock": {"chunks": 4}});
    let response = messages(&h, &key, request).await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let id = request_id(&response);
    let events = events(&response.text().await.unwrap());
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    let deltas = names
        .iter()
        .filter(|n| **n == "content_block_delta")
        .count();
    assert!(deltas >= 2, "{names:?}");
    let mut expected = vec!["message_start", "content_block_start"];
    expected.extend(std::iter::repeat_n("content_block_delta", deltas));
    expected.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(names, expected);

    let text: String = events
        .iter()
        .filter_map(|(_, d)| d["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, format!("{REPLY_PREFIX}hi there"));
    assert!(
        events
            .iter()
            .all(|(_, d)| d["index"].is_null() || d["index"] == 0)
    );
    let (_, message_delta) = &events[events.len() - 2];
    assert_eq!(
        message_delta["delta"],
        json!({"stop_reason": "end_turn", "stop_sequence": null})
    );
    assert_eq!(message_delta["usage"]["output_tokens"], REPLY_WORDS);
    assert_eq!(message_delta["usage"]["input_tokens"], PROMPT);

    let record = h.record_eventually(&id).await;
    assert_eq!(
        (
            record.model.as_str(),
            record.prompt_tokens,
            record.completion_tokens
        ),
        ("mock-gpt", PROMPT, REPLY_WORDS)
    );
    assert_eq!(
        (record.cost, record.status, record.stream, record.estimated),
        (cost_of(PROMPT, REPLY_WORDS), 200, true, false)
    );
    h.shutdown().await;
}

fn weather_tool() -> Value {
    json!([{"name": "get_weather", "description": "Weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}])
}

#[tokio::test]
async fn tool_use_round_trip() {
    let h = start().await;
    let (_, key) = h
        .user_with_key("cy", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let knobs =
        json!({"tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}, "pieces": 3}});
    let ask = json!([{"role": "user", "content": "weather in Paris?"}]);

    // Non-stream: the call comes back as a tool_use block with its input object.
    let request = json!({"model": CLAUDE, "max_tokens": 100, "tools": weather_tool(),
        "tool_choice": {"type": "any"}, "messages": ask, "mock": knobs});
    let response = messages(&h, &key, request).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["stop_reason"], "tool_use", "{body}");
    let call = &body["content"][0];
    assert_eq!(
        (&call["type"], &call["name"], &call["input"]),
        (
            &json!("tool_use"),
            &json!("get_weather"),
            &json!({"city": "Paris"})
        )
    );
    let call_id = call["id"].as_str().unwrap().to_string();

    // Stream: the arguments arrive as input_json_delta pieces on the tool_use block.
    let request = json!({"model": CLAUDE, "max_tokens": 100, "stream": true,
        "tools": weather_tool(), "messages": ask, "mock": knobs});
    let events = events(&messages(&h, &key, request).await.text().await.unwrap());
    let start = events
        .iter()
        .find(|(n, _)| n == "content_block_start")
        .expect("a block");
    assert_eq!(start.1["content_block"]["type"], "tool_use");
    assert_eq!(start.1["content_block"]["name"], "get_weather");
    let pieces: Vec<&str> = events
        .iter()
        .filter_map(|(_, d)| d["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(pieces.len(), 3, "{pieces:?}");
    let input: Value = serde_json::from_str(&pieces.concat()).unwrap();
    assert_eq!(input, json!({"city": "Paris"}));
    let (name, message_delta) = &events[events.len() - 2];
    assert_eq!(name, "message_delta");
    assert_eq!(message_delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(events.last().unwrap().0, "message_stop");

    // The result goes back: the upstream sees the call and its result in its own dialect.
    let request = json!({"model": CLAUDE, "max_tokens": 100, "tools": weather_tool(),
    "messages": [
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": call_id,
            "name": "get_weather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call_id,
            "content": [{"type": "text", "text": "18 C"}]}]}
    ]});
    let response = messages(&h, &key, request).await;
    assert_eq!(response.status(), 200);
    let seen = h.mock.journal();
    let upstream = &seen.last().unwrap().body;
    assert_eq!(upstream["messages"][1]["content"][0]["type"], "tool_use");
    assert_eq!(
        upstream["messages"][1]["content"][0]["input"],
        json!({"city": "Paris"})
    );
    let result = &upstream["messages"][2]["content"][0];
    assert_eq!(
        (&result["type"], &result["tool_use_id"]),
        (&json!("tool_result"), &json!(call_id))
    );
    h.shutdown().await;
}

#[tokio::test]
async fn errors_are_anthropic_shaped() {
    let h = start().await;
    let (_, key) = h
        .user_with_key("di", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let hello = json!({"model": "mock-gpt", "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}]});

    let response = h
        .http
        .post(format!("{}/v1/messages", h.base))
        .json(&hello)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "authentication_error", "{body}");
    assert!(body["error"]["message"].is_string());

    let unknown = json!({"model": "no-such-model", "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}]});
    let response = messages(&h, &key, unknown).await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "not_found_error", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no-such-model")
    );

    let document = json!({"model": "mock-gpt", "max_tokens": 10, "messages": [{"role": "user",
        "content": [{"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}}]}]});
    let response = messages(&h, &key, document).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"type": "error", "error": {"type": "invalid_request_error",
            "message": "document source type `url` is not supported on this gateway (base64 and text are)"}})
    );

    // Bearer works as well as x-api-key.
    let response = h
        .http
        .post(format!("{}/v1/messages", h.base))
        .bearer_auth(&key)
        .json(&hello)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    h.shutdown().await;
}

#[tokio::test]
async fn count_tokens_is_answered_locally() {
    let h = start().await;
    let (_, key) = h
        .user_with_key("ed", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let chat = json!({"messages": [{"role": "system", "content": "be brief"},
                                   {"role": "user", "content": "hi there"}]});
    let expected = tokenhub::tokens::count_chat_prompt(
        chat.to_string().as_bytes(),
        tokenhub::tokens::Budget::BLOCKING_POOL,
    );
    // Anthropic's own shape has no max_tokens (what every Anthropic SDK sends); a client
    // that adds one anyway is answered the same.
    let anthropic = json!({"model": "mock-gpt", "system": "be brief",
        "messages": [{"role": "user", "content": "hi there"}]});
    let mut with_max_tokens = anthropic.clone();
    with_max_tokens["max_tokens"] = json!(10);
    for request in [anthropic, with_max_tokens] {
        let response = h
            .http
            .post(format!("{}/v1/messages/count_tokens", h.base))
            .header("x-api-key", &key)
            .json(&request)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{request}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, json!({"input_tokens": expected}));
    }
    let broken = h
        .http
        .post(format!("{}/v1/messages/count_tokens", h.base))
        .header("x-api-key", &key)
        .header("content-type", "application/json")
        .body("{\"model\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status(), 400);
    assert!(h.mock.journal().is_empty(), "no upstream call");
    h.shutdown().await;
}
