//! OpenAI clients served by an Anthropic upstream (`type = "anthropic"` channels): a real
//! gateway in front of the mock's Messages dialect. The client sees OpenAI's format only;
//! the upstream sees Anthropic's; billing uses Anthropic's usage, cache classes included.

use crate::harness::*;
use mock_upstream::REPLY_PREFIX;
use serde_json::{Value, json};
use tokenhub::accounts::KeyOptions;
use tokenhub::config::ModelConfig;
use tokenhub::ledger::money::Nanos;

const MODEL: &str = "claude-sonnet-4";
/// A live Anthropic id: the mock refuses retired ones (such as `claude-sonnet-4-20250514`,
/// retired 2026-06-15), as Anthropic does.
const UPSTREAM_MODEL: &str = "claude-sonnet-4-6";
const CHANNEL_KEY: &str = "sk-ant-channel-key";

/// Anthropic's prices for Sonnet 4: $3 input, $0.30 cache reads, $3.75 cache writes
/// (1.25× input), $15 output per 1M tokens: nano-USD per token.
const INPUT: i64 = 3000;
const CACHE_READ: i64 = 300;
const CACHE_WRITE: i64 = 3750;
const OUTPUT: i64 = 15000;

fn claude_cost(prompt: i64, read: i64, written: i64, completion: i64) -> Nanos {
    Nanos(
        (prompt - read - written) * INPUT
            + read * CACHE_READ
            + written * CACHE_WRITE
            + completion * OUTPUT,
    )
}

/// A gateway whose `claude` channel speaks Anthropic's dialect to the mock. The base URL
/// ends in `/v1`, which the adapter must not double.
async fn start(backend: Backend) -> Harness {
    Harness::start_with(backend, |settings, mock_url| {
        let mut claude = channel("claude", &format!("{mock_url}/v1"), &[MODEL], 0);
        claude.kind = "anthropic".into();
        claude.api_key = Some(CHANNEL_KEY.into());
        claude.model_map.insert(MODEL.into(), UPSTREAM_MODEL.into());
        settings.channels.push(claude);
        settings.models.push(ModelConfig {
            cached_input_usd_per_mtok: Some("0.30".into()),
            cache_write_usd_per_mtok: Some("3.75".into()),
            ..model(MODEL, "3", "15")
        });
    })
    .await
}

fn conversation() -> Value {
    json!([{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi there"}])
}

/// (2 words + 3) system + (2 words + 3) user, by the mock's counting rule.
const PROMPT: i64 = 10;
/// "Hello from mock-upstream! You said: hi there"
const REPLY_WORDS: i64 = 7;

#[tokio::test]
async fn non_stream_answer_is_translated_and_billed_with_cache_prices() {
    for backend in backends() {
        let h = start(backend).await;
        let (user, key) = h
            .user_with_key("ada", Nanos::from_usd(1), KeyOptions::default())
            .await;
        let knobs = json!({"cache_read_tokens": 3, "cache_write_tokens": 4});
        let request =
            json!({"model": MODEL, "messages": conversation(), "temperature": 1.7, "mock": knobs});
        let response = h.chat(&key, request).await;
        assert_eq!(response.status(), 200);
        let id = request_id(&response);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["object"], "chat.completion");
        assert_eq!(body["model"], UPSTREAM_MODEL);
        assert_eq!(
            body["choices"],
            json!([{"index": 0, "logprobs": null, "finish_reason": "stop",
                    "message": {"role": "assistant", "content": format!("{REPLY_PREFIX}hi there")}}])
        );
        assert_eq!(
            without_cost(&body["usage"]),
            json!({"prompt_tokens": PROMPT, "completion_tokens": REPLY_WORDS,
                   "total_tokens": PROMPT + REPLY_WORDS,
                   "prompt_tokens_details": {"cached_tokens": 3, "cache_write_tokens": 4}})
        );

        let seen = h.mock.journal();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].path, "/v1/messages");
        assert_eq!(seen[0].header("x-api-key"), Some(CHANNEL_KEY));
        assert_eq!(seen[0].header("anthropic-version"), Some("2023-06-01"));
        assert_eq!(seen[0].header("authorization"), None);
        assert_eq!(
            seen[0].body,
            json!({"model": UPSTREAM_MODEL, "max_tokens": 4096,
                   "messages": [{"role": "user", "content": [{"type": "text", "text": "hi there"}]}],
                   "system": [{"type": "text", "text": "be brief"}],
                   "temperature": 1.0, "mock": knobs})
        );

        let cost = claude_cost(PROMPT, 3, 4, REPLY_WORDS);
        // 3 plain input + 3 read + 4 written + 7 output tokens, each class at its price:
        // the 4 writes cost 15 000 nano, not the 12 000 they would at the input price.
        assert_eq!(cost, Nanos(9_000 + 900 + 15_000 + 105_000));
        let record = h.record(&id).await;
        assert_eq!(
            (
                record.prompt_tokens,
                record.cached_tokens,
                record.cache_write_tokens,
                record.completion_tokens
            ),
            (PROMPT as u64, 3, 4, REPLY_WORDS as u64)
        );
        assert_eq!(
            (record.cost, record.estimated, record.status),
            (cost, false, 200)
        );
        assert_eq!(h.stored_balance(user.id).await, Nanos::from_usd(1) - cost);
        assert_eq!(
            h.gateway().store.recomputed_balance(user.id).await.unwrap(),
            Nanos::from_usd(1) - cost
        );
        h.shutdown().await;
    }
}

#[tokio::test]
async fn stream_is_translated_to_chunks_with_usage_when_asked() {
    let h = start(Backend::Sqlite).await;
    let (_, key) = h
        .user_with_key("bo", Nanos::from_usd(1), KeyOptions::default())
        .await;
    for wants_usage in [true, false] {
        let request = json!({"model": MODEL, "stream": true, "messages": conversation(),
            "stream_options": {"include_usage": wants_usage},
            "mock": {"chunks": 3, "cache_read_tokens": 5, "cache_write_tokens": 2}});
        let response = h.chat(&key, request).await;
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        let id = request_id(&response);
        let data = sse_data(&response.text().await.unwrap());
        assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
        let chunks: Vec<Value> = data[..data.len() - 1]
            .iter()
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        assert_eq!(
            chunks[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": ""})
        );
        assert_eq!(streamed_text(&data), format!("{REPLY_PREFIX}hi there"));
        let finish: Vec<&Value> = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["finish_reason"].as_str().map(|_| c))
            .collect();
        assert_eq!(finish.len(), 1);
        assert_eq!(finish[0]["choices"][0]["finish_reason"], "stop");
        let usage: Vec<&Value> = chunks
            .iter()
            .filter(|c| c["choices"] == json!([]))
            .collect();
        if wants_usage {
            assert_eq!(usage.len(), 1, "{chunks:?}");
            assert_eq!(usage[0]["usage"]["prompt_tokens"], PROMPT);
            assert_eq!(
                usage[0]["usage"]["prompt_tokens_details"],
                json!({"cached_tokens": 5, "cache_write_tokens": 2})
            );
        } else {
            assert!(
                usage.is_empty(),
                "usage hidden from a client that did not ask"
            );
        }
        let record = h.record_eventually(&id).await;
        assert_eq!(
            (
                record.prompt_tokens,
                record.cached_tokens,
                record.cache_write_tokens,
                record.completion_tokens
            ),
            (PROMPT as u64, 5, 2, REPLY_WORDS as u64)
        );
        assert_eq!(record.cost, claude_cost(PROMPT, 5, 2, REPLY_WORDS));
        assert_eq!(
            record.cost,
            Nanos(3 * 3000 + 5 * 300 + 2 * 3750 + 7 * 15000)
        );
        assert!(record.stream && !record.estimated && record.error.is_none());
    }
    let seen = h.mock.journal();
    assert_eq!(seen[0].body["stream"], true);
    assert!(
        seen[0].body.get("stream_options").is_none(),
        "not an Anthropic member"
    );
    h.shutdown().await;
}

/// The tool calls a stream assembles, by OpenAI index: (id, name, arguments).
fn assembled_tool_calls(chunks: &[Value]) -> Vec<(String, String, String)> {
    let mut calls: Vec<(String, String, String)> = Vec::new();
    for chunk in chunks {
        for piece in chunk["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let index = piece["index"].as_u64().unwrap() as usize;
            if index == calls.len() {
                calls.push(Default::default());
            }
            let call = &mut calls[index];
            if let Some(id) = piece["id"].as_str() {
                call.0 = id.into();
                call.1 = piece["function"]["name"].as_str().unwrap().into();
            }
            call.2
                .push_str(piece["function"]["arguments"].as_str().unwrap_or_default());
        }
    }
    calls
}

#[tokio::test]
async fn tool_calls_are_assembled_from_pieces_and_finish_with_tool_calls() {
    let h = start(Backend::Sqlite).await;
    let (_, key) = h
        .user_with_key("cy", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    let calls = json!([{"name": "get_weather", "arguments": {"city": "Paris"}, "pieces": 3},
                       {"name": "get_weather", "arguments": {"city": "Rome"}, "pieces": 2}]);
    let request = json!({"model": MODEL, "stream": true, "messages": conversation(), "tools": tools,
        "tool_choice": "required", "mock": {"tool_call": calls}});
    let response = h.chat(&key, request).await;
    assert_eq!(response.status(), 200);
    let id = request_id(&response);
    let data = sse_data(&response.text().await.unwrap());
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let assembled = assembled_tool_calls(&chunks);
    assert_eq!(assembled.len(), 2, "{chunks:?}");
    assert!(assembled[0].0.starts_with("toolu_mock_") && assembled[0].0.ends_with("_0"));
    assert!(assembled[1].0.ends_with("_1"));
    assert_eq!(assembled[0].1, "get_weather");
    assert_eq!(assembled[0].2, r#"{"city":"Paris"}"#);
    assert_eq!(assembled[1].2, r#"{"city":"Rome"}"#);
    let pieces = chunks
        .iter()
        .filter(|c| c["choices"][0]["delta"]["tool_calls"][0]["index"] == 0)
        .count();
    assert_eq!(pieces, 4, "the opening delta, then 3 argument pieces");
    let finish = chunks
        .iter()
        .find_map(|c| c["choices"][0]["finish_reason"].as_str())
        .unwrap();
    assert_eq!(finish, "tool_calls");
    // Two calls: name + compact arguments are 2 mock words each.
    let record = h.record_eventually(&id).await;
    assert_eq!(
        (record.prompt_tokens, record.completion_tokens),
        (PROMPT as u64, 4)
    );
    assert_eq!(record.cost, claude_cost(PROMPT, 0, 0, 4));
    let upstream = &h.mock.journal()[0].body;
    assert_eq!(upstream["tool_choice"], json!({"type": "any"}));
    assert_eq!(
        upstream["tools"][0]["input_schema"]["properties"]["city"]["type"],
        "string"
    );

    // Not streamed: the same calls as one message, arguments as JSON strings.
    let request = json!({"model": MODEL, "messages": conversation(), "tools": tools, "mock": {"tool_call": calls}});
    let body: Value = h.chat(&key, request).await.json().await.unwrap();
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    assert_eq!(choice["message"]["tool_calls"][1]["type"], "function");
    assert_eq!(
        choice["message"]["tool_calls"][1]["function"],
        json!({"name": "get_weather", "arguments": r#"{"city":"Rome"}"#})
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_tool_result_conversation_reaches_the_upstream_as_anthropic_turns() {
    let h = start(Backend::Sqlite).await;
    let (_, key) = h
        .user_with_key("di", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let messages = json!([
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
        {"role": "user", "content": "thanks"}
    ]);
    let response = h
        .chat(&key, json!({"model": MODEL, "messages": messages}))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        format!("{REPLY_PREFIX}thanks")
    );
    assert_eq!(
        h.mock.journal()[0].body["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "weather?"}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                {"type": "text", "text": "thanks"}]}
        ])
    );
    h.shutdown().await;
}

#[tokio::test]
async fn unsupported_requests_are_refused_before_the_upstream_and_cost_nothing() {
    let h = start(Backend::Sqlite).await;
    let (user, key) = h
        .user_with_key("ed", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let response = h
        .chat(
            &key,
            json!({"model": MODEL, "messages": conversation(), "n": 2}),
        )
        .await;
    assert_eq!(response.status(), 400);
    let id = request_id(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        "`n` greater than 1 is not supported for models served by Anthropic"
    );
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(h.mock.journal().is_empty());
    let record = h.record(&id).await;
    assert_eq!((record.status, record.cost), (400, Nanos::ZERO));
    assert_eq!(h.stored_balance(user.id).await, Nanos::from_usd(1));

    // The whole answer, exactly as docs/providers/anthropic.md shows it.
    let request = json!({"model": MODEL, "messages": conversation(), "n": 2});
    let response = h.chat(&key, request).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": {
            "message": "`n` greater than 1 is not supported for models served by Anthropic",
            "type": "invalid_request_error", "param": null, "code": null}})
    );
    assert!(h.mock.journal().is_empty());
    h.shutdown().await;
}

#[tokio::test]
async fn upstream_errors_limits_and_in_band_errors() {
    let h = start(Backend::Sqlite).await;
    let (_, key) = h
        .user_with_key("fi", Nanos::from_usd(1), KeyOptions::default())
        .await;
    // An Anthropic error body keeps its message; 529 (overloaded) is an upstream failure.
    let response = h
        .chat(
            &key,
            json!({"model": MODEL, "messages": conversation(), "mock": {"fail_status": 529}}),
        )
        .await;
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["message"], "mock failure 529");

    // max_tokens reaches the upstream; its cut answer finishes with `length`.
    let body: Value = h
        .chat(
            &key,
            json!({"model": MODEL, "messages": conversation(), "max_tokens": 3}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from mock-upstream!"
    );

    // An in-band error after some text ends the client's stream with an error, not [DONE].
    let request = json!({"model": MODEL, "stream": true, "messages": conversation(), "mock": {"error_event": true}});
    let response = h.chat(&key, request).await;
    assert_eq!(response.status(), 200);
    let id = request_id(&response);
    let data = sse_data(&response.text().await.unwrap());
    assert!(!data.iter().any(|d| d == "[DONE]"), "{data:?}");
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert_eq!(
        last["error"],
        json!({"message": "mock in-band error", "type": "overloaded_error", "param": null, "code": null})
    );
    assert_eq!(streamed_text(&data), format!("{REPLY_PREFIX}hi there"));
    let record = h.record_eventually(&id).await;
    assert_eq!(record.error.as_deref(), Some("mock in-band error"));
    assert!(
        record.estimated && record.completion_tokens > 0,
        "{record:?}"
    );
    h.shutdown().await;
}
