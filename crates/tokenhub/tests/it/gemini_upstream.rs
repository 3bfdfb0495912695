//! OpenAI clients served by a Gemini upstream (`type = "gemini"` channels): a real
//! gateway in front of the mock's Gemini dialect. The client sees OpenAI's format only;
//! the upstream sees Gemini's `generateContent`, with the key in `x-goog-api-key` (the
//! mock refuses a key in the URL, and a stream without `alt=sse`); billing uses Gemini's
//! usage, cached and thinking tokens included.

use crate::harness::*;
use mock_upstream::REPLY_PREFIX;
use serde_json::{Value, json};
use tokenhub::accounts::KeyOptions;
use tokenhub::config::ModelConfig;
use tokenhub::ledger::money::Nanos;

const MODEL: &str = "gemini-2.5-flash";
const UPSTREAM_MODEL: &str = "gemini-2.5-flash-lite";
const CHANNEL_KEY: &str = "AIza-channel-key";

/// $0.30 input, $0.075 cached input, $2.50 output per 1M tokens: nano-USD per token.
const INPUT: i64 = 300;
const CACHED: i64 = 75;
const OUTPUT: i64 = 2500;

fn gemini_cost(prompt: i64, cached: i64, completion: i64) -> Nanos {
    Nanos((prompt - cached) * INPUT + cached * CACHED + completion * OUTPUT)
}

async fn start(backend: Backend) -> Harness {
    Harness::start_with(backend, |settings, mock_url| {
        let mut gemini = channel("gemini", mock_url, &[MODEL], 0);
        gemini.kind = "gemini".into();
        gemini.api_key = Some(CHANNEL_KEY.into());
        gemini.model_map.insert(MODEL.into(), UPSTREAM_MODEL.into());
        settings.channels.push(gemini);
        settings.models.push(ModelConfig {
            cached_input_usd_per_mtok: Some("0.075".into()),
            ..model(MODEL, "0.30", "2.50")
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
const GENERATE: &str = "/v1beta/models/gemini-2.5-flash-lite:generateContent";
const STREAM: &str = "/v1beta/models/gemini-2.5-flash-lite:streamGenerateContent";

fn chunks_of(data: &[String]) -> Vec<Value> {
    data.iter()
        .filter(|d| d.as_str() != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

#[tokio::test]
async fn non_stream_answer_is_translated_and_billed_with_cached_and_thinking_tokens() {
    for backend in backends() {
        let h = start(backend).await;
        let (user, key) = h
            .user_with_key("ada", Nanos::from_usd(1), KeyOptions::default())
            .await;
        let knobs = json!({"cached_tokens": 4, "reasoning": "let me think"});
        let request = json!({"model": MODEL, "messages": conversation(), "temperature": 0.7,
            "user": "end-user-1", "mock": knobs});
        let response = h.chat(&key, request).await;
        assert_eq!(response.status(), 200);
        let id = request_id(&response);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["object"], "chat.completion");
        assert_eq!(body["model"], UPSTREAM_MODEL);
        assert_eq!(
            body["choices"],
            json!([{"index": 0, "logprobs": null, "finish_reason": "stop",
                    "message": {"role": "assistant", "content": format!("{REPLY_PREFIX}hi there"),
                                "reasoning_content": "let me think"}}])
        );
        // Thinking (3 words) is billed as output.
        let completion = REPLY_WORDS + 3;
        assert_eq!(
            without_cost(&body["usage"]),
            json!({"prompt_tokens": PROMPT, "completion_tokens": completion,
                   "total_tokens": PROMPT + completion,
                   "prompt_tokens_details": {"cached_tokens": 4},
                   "completion_tokens_details": {"reasoning_tokens": 3}})
        );

        let seen = h.mock.journal();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].path, GENERATE);
        assert_eq!(seen[0].header("x-goog-api-key"), Some(CHANNEL_KEY));
        assert_eq!(seen[0].header("authorization"), None);
        assert_eq!(
            seen[0].body,
            json!({"contents": [{"role": "user", "parts": [{"text": "hi there"}]}],
                   "systemInstruction": {"parts": [{"text": "be brief"}]},
                   "generationConfig": {"temperature": 0.7},
                   "mock": knobs})
        );

        let cost = gemini_cost(PROMPT, 4, completion);
        assert_eq!(cost, Nanos(6 * 300 + 4 * 75 + 10 * 2500));
        let record = h.record(&id).await;
        assert_eq!(
            (
                record.prompt_tokens,
                record.cached_tokens,
                record.completion_tokens
            ),
            (PROMPT as u64, 4, completion as u64)
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
            "mock": {"chunks": 3, "cached_tokens": 5}});
        let response = h.chat(&key, request).await;
        assert_eq!(response.status(), 200);
        let id = request_id(&response);
        let data = sse_data(&response.text().await.unwrap());
        assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
        let chunks = chunks_of(&data);
        assert_eq!(
            chunks[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": ""})
        );
        assert_eq!(streamed_text(&data), format!("{REPLY_PREFIX}hi there"));
        let content_chunks = chunks
            .iter()
            .filter(|c| {
                c["choices"][0]["delta"]["content"]
                    .as_str()
                    .is_some_and(|t| !t.is_empty())
            })
            .count();
        assert_eq!(content_chunks, 3, "one chunk per upstream piece");
        let finish: Vec<&str> = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["finish_reason"].as_str())
            .collect();
        assert_eq!(finish, ["stop"]);
        let usage: Vec<&Value> = chunks
            .iter()
            .filter(|c| c["choices"] == json!([]))
            .collect();
        if wants_usage {
            assert_eq!(usage.len(), 1, "{chunks:?}");
            assert_eq!(
                without_cost(&usage[0]["usage"]),
                json!({"prompt_tokens": PROMPT, "completion_tokens": REPLY_WORDS,
                       "total_tokens": PROMPT + REPLY_WORDS,
                       "prompt_tokens_details": {"cached_tokens": 5},
                       "completion_tokens_details": {"reasoning_tokens": 0}})
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
                record.completion_tokens
            ),
            (PROMPT as u64, 5, REPLY_WORDS as u64)
        );
        assert_eq!(record.cost, gemini_cost(PROMPT, 5, REPLY_WORDS));
        assert!(record.stream && !record.estimated && record.error.is_none());
    }
    let seen = h.mock.journal();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].path, STREAM);
    assert_eq!(seen[0].header("x-goog-api-key"), Some(CHANNEL_KEY));
    for member in ["stream", "stream_options", "model"] {
        assert!(
            seen[0].body.get(member).is_none(),
            "{member} is not a Gemini member"
        );
    }
    h.shutdown().await;
}

#[tokio::test]
async fn a_function_call_round_trip() {
    let h = start(Backend::Sqlite).await;
    let (_, key) = h
        .user_with_key("cy", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    let call = json!({"name": "get_weather", "arguments": {"city": "Paris"}});

    // 1. The model calls the function.
    let request = json!({"model": MODEL, "messages": [{"role": "user", "content": "weather?"}],
        "tools": tools, "tool_choice": "required", "mock": {"tool_call": call}});
    let response = h.chat(&key, request).await;
    assert_eq!(response.status(), 200);
    let id = request_id(&response);
    let body: Value = response.json().await.unwrap();
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    assert_eq!(
        choice["message"]["tool_calls"],
        json!([{"id": "call_0", "type": "function",
                "function": {"name": "get_weather", "arguments": r#"{"city":"Paris"}"#}}])
    );
    let upstream = &h.mock.journal()[0].body;
    assert_eq!(
        upstream["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY"}})
    );
    assert_eq!(
        upstream["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"]["properties"]["city"]
            ["type"],
        "string"
    );
    // The name and the compact arguments are one mock word each.
    let record = h.record(&id).await;
    assert_eq!((record.prompt_tokens, record.completion_tokens), (4, 2));
    assert_eq!(record.cost, gemini_cost(4, 0, 2));

    // 2. The client answers it; the result reaches Gemini under the function's name.
    let messages = json!([
        {"role": "user", "content": "weather?"},
        choice["message"].clone(),
        {"role": "tool", "tool_call_id": "call_0", "content": "sunny"},
        {"role": "user", "content": "thanks"}
    ]);
    let response = h
        .chat(
            &key,
            json!({"model": MODEL, "messages": messages, "tools": tools}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        format!("{REPLY_PREFIX}thanks")
    );
    assert_eq!(
        h.mock.journal()[1].body["contents"],
        json!([
            {"role": "user", "parts": [{"text": "weather?"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"content": "sunny"}}},
                {"text": "thanks"}]}
        ])
    );

    // 3. Streamed, two parallel calls arrive as indexed tool call deltas.
    let calls = json!([call, {"name": "get_weather", "arguments": {"city": "Rome"}}]);
    let request = json!({"model": MODEL, "stream": true, "messages": conversation(),
        "tools": tools, "mock": {"tool_call": calls}});
    let response = h.chat(&key, request).await;
    let id = request_id(&response);
    let data = sse_data(&response.text().await.unwrap());
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let deltas: Vec<Value> = chunks_of(&data)
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0).cloned())
        .collect();
    assert_eq!(
        deltas,
        [
            json!({"index": 0, "id": "call_0", "type": "function",
                   "function": {"name": "get_weather", "arguments": r#"{"city":"Paris"}"#}}),
            json!({"index": 1, "id": "call_1", "type": "function",
                   "function": {"name": "get_weather", "arguments": r#"{"city":"Rome"}"#}}),
        ]
    );
    let finish: Vec<String> = chunks_of(&data)
        .iter()
        .filter_map(|c| c["choices"][0]["finish_reason"].as_str().map(String::from))
        .collect();
    assert_eq!(finish, ["tool_calls"]);
    let record = h.record_eventually(&id).await;
    assert_eq!(
        (record.prompt_tokens, record.completion_tokens),
        (PROMPT as u64, 4)
    );
    assert_eq!(record.cost, gemini_cost(PROMPT, 0, 4));
    h.shutdown().await;
}

/// Gemini 3 signs its function calls and refuses a later turn whose call comes back
/// unsigned (the mock's `thought_signature` knob does both). The signature travels in
/// the tool call id, so an OpenAI client that replays the id keeps the conversation going.
#[tokio::test]
async fn thought_signatures_survive_a_round_trip_through_the_client() {
    let h = start(Backend::Sqlite).await;
    let (_, key) = h
        .user_with_key("sig", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let signature = "CiQB+/90aG91Z2h0LXNpZ/4=";
    let tools = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    let call = json!({"name": "get_weather", "arguments": {"city": "Paris"}});
    let knobs = json!({"tool_call": call, "thought_signature": signature});

    // 1. Streamed: the signed call's id carries the signature (base64url, unpadded).
    let request = json!({"model": MODEL, "stream": true, "tools": tools,
        "messages": [{"role": "user", "content": "weather?"}], "mock": knobs});
    let response = h.chat(&key, request).await;
    assert_eq!(response.status(), 200);
    let data = sse_data(&response.text().await.unwrap());
    let calls: Vec<Value> = chunks_of(&data)
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0).cloned())
        .collect();
    let id = "call_0_ts_CiQB-_90aG91Z2h0LXNpZ_4";
    assert_eq!(
        calls,
        [json!({"index": 0, "id": id, "type": "function",
                "function": {"name": "get_weather", "arguments": r#"{"city":"Paris"}"#}})]
    );

    // 2. The client replays the call with that id: Gemini gets its signature back.
    let assistant = json!({"role": "assistant", "content": null, "tool_calls": [{"id": id,
        "type": "function", "function": {"name": "get_weather", "arguments": r#"{"city":"Paris"}"#}}]});
    let messages = json!([{"role": "user", "content": "weather?"}, assistant,
        {"role": "tool", "tool_call_id": id, "content": "sunny"}]);
    let replay = json!({"model": MODEL, "messages": messages, "tools": tools,
        "mock": {"thought_signature": signature}});
    let response = h.chat(&key, replay.clone()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        h.mock.journal()[1].body["contents"][1],
        json!({"role": "model", "parts": [{"functionCall": {"name": "get_weather",
            "args": {"city": "Paris"}}, "thoughtSignature": signature}]})
    );

    // 3. A client that rewrote the id loses the signature, and Gemini refuses the turn
    // with its own message (a 400 is the client's: passed on, not retried).
    let mut rewritten = replay;
    rewritten["messages"][1]["tool_calls"][0]["id"] = json!("call_0");
    rewritten["messages"][2]["tool_call_id"] = json!("call_0");
    let response = h.chat(&key, rewritten).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Function call is missing a thought_signature"),
        "{body}"
    );
    h.shutdown().await;
}

/// `reasoning_effort` and a `json_schema` response format reach Gemini as its own
/// generation settings.
#[tokio::test]
async fn reasoning_effort_and_json_schema_become_generation_config() {
    let h = start(Backend::Sqlite).await;
    let (_, key) = h
        .user_with_key("gen", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let schema = json!({"type": "object", "properties": {"city": {"type": "string"}}});
    let request = json!({"model": MODEL, "messages": conversation(), "reasoning_effort": "low",
        "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": schema}},
        "mock": {"reply": "{\"city\":\"Paris\"}"}});
    let response = h.chat(&key, request).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        r#"{"city":"Paris"}"#
    );
    assert_eq!(
        h.mock.journal()[0].body["generationConfig"],
        json!({"responseMimeType": "application/json", "responseJsonSchema": schema,
               "thinkingConfig": {"thinkingBudget": 1024}})
    );
    h.shutdown().await;
}

#[tokio::test]
async fn refusals_upstream_errors_and_finish_reasons() {
    let h = start(Backend::Sqlite).await;
    let (user, key) = h
        .user_with_key("ed", Nanos::from_usd(1), KeyOptions::default())
        .await;
    // Refused before the upstream, at no cost.
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
        "`n` greater than 1 is not supported for models served by Gemini"
    );
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(h.mock.journal().is_empty());
    let record = h.record(&id).await;
    assert_eq!((record.status, record.cost), (400, Nanos::ZERO));
    assert_eq!(h.stored_balance(user.id).await, Nanos::from_usd(1));

    // The whole answer, exactly as docs/providers/gemini.md shows it.
    let request = json!({"model": MODEL, "messages": conversation(), "logprobs": true});
    let response = h.chat(&key, request).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": {
            "message": "`logprobs` is not supported for models served by Gemini",
            "type": "invalid_request_error", "param": null, "code": null}})
    );
    assert!(h.mock.journal().is_empty());

    // A Gemini error body keeps its message; a 400 stays the client's mistake.
    let response = h
        .chat(
            &key,
            json!({"model": MODEL, "messages": conversation(), "mock": {"fail_status": 400}}),
        )
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["message"], "mock failure 400");
    let response = h
        .chat(
            &key,
            json!({"model": MODEL, "messages": conversation(), "mock": {"fail_status": 503}}),
        )
        .await;
    assert_eq!(
        response.status(),
        503,
        "the upstream status, after the only channel failed"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["message"], "mock failure 503");

    // maxOutputTokens cuts the answer: `length`; a safety stop: `content_filter`.
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
    let body: Value = h
        .chat(&key, json!({"model": MODEL, "messages": conversation(), "mock": {"finish_reason": "SAFETY"}}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["choices"][0]["finish_reason"], "content_filter");

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
        json!({"message": "mock in-band error", "type": "INTERNAL", "param": null, "code": null})
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

/// Issue 19, finding 3: a strict-mode tool with MCP-style schema keywords, penalties and
/// `reasoning_effort: none` reach a Gemini 3 model in the form it accepts (the strict
/// mock refuses JSON Schema keywords in `parameters`, penalties, and a thinking budget
/// of 0 on Gemini 3).
#[tokio::test]
async fn strict_tools_penalties_and_no_thinking_reach_gemini_3_as_it_accepts_them() {
    let h = Harness::start_with(Backend::Sqlite, |settings, mock_url| {
        let mut gemini = channel("gemini-3", mock_url, &[MODEL], 0);
        gemini.kind = "gemini".into();
        gemini
            .model_map
            .insert(MODEL.into(), "gemini-3.5-flash".into());
        settings.channels.push(gemini);
        settings.models.push(model(MODEL, "0.30", "2.50"));
    })
    .await;
    let (_, key) = h
        .user_with_key("g3", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "unit": {"const": "celsius"},
            "city": {"type": ["string", "null"]}
        },
        "required": ["unit", "city"],
        "additionalProperties": false
    });
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "strict": true,
        "parameters": schema}}]);
    let request = json!({"model": MODEL, "messages": conversation(), "tools": tools,
        "presence_penalty": 0.5, "frequency_penalty": 0.25, "reasoning_effort": "none"});
    let response = h.chat(&key, request).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let sent = &h.mock.journal()[0].body;
    assert_eq!(
        sent["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"], schema,
        "the schema as the client wrote it"
    );
    assert!(
        sent["tools"][0]["functionDeclarations"][0]
            .get("parameters")
            .is_none()
    );
    assert_eq!(
        sent["generationConfig"],
        json!({"thinkingConfig": {"thinkingLevel": "minimal"}}),
        "no penalties, and the least thinking Gemini 3 Flash allows"
    );
    h.shutdown().await;
}

/// Issue 19, finding 3: `400 FAILED_PRECONDITION` (billing or region of the channel's
/// project) is the channel's fault: the next channel serves the request, and the
/// failing channel's health pays for it.
#[tokio::test]
async fn failed_precondition_fails_over_and_counts_against_the_channel() {
    let h = Harness::start_with(Backend::Sqlite, |settings, mock_url| {
        for (name, priority) in [("gemini-a", 10), ("gemini-b", 0)] {
            let mut gemini = channel(name, mock_url, &[MODEL], priority);
            gemini.kind = "gemini".into();
            gemini.model_map.insert(MODEL.into(), UPSTREAM_MODEL.into());
            settings.channels.push(gemini);
        }
        settings.models.push(model(MODEL, "0.30", "2.50"));
    })
    .await;
    let (_, key) = h
        .user_with_key("fp", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let precondition = json!({"error": {"code": 400,
        "message": "User location is not supported for the API use.",
        "status": "FAILED_PRECONDITION"}});
    let request = json!({"model": MODEL, "messages": conversation(), "mock": {
        "fail_status": 400, "fail_times": 1, "fail_key": "region", "fail_body": precondition}});
    let response = h.chat(&key, request).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert_eq!(h.mock.journal().len(), 2, "tried on the second channel");
    assert_eq!(h.health_of("gemini-a").await.failures, 1);
    assert_eq!(h.health_of("gemini-b").await.successes, 1);
    h.shutdown().await;
}
