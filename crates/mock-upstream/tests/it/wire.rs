//! Wire-level tests against an in-process `MockServer` over loopback.

use std::time::{Duration, Instant};

use mock_upstream::{Defaults, MockServer, REPLY_PREFIX, completion_tokens, prompt_tokens};
use serde_json::{Value, json};

async fn post(server: &MockServer, path: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}{path}", server.base_url()))
        .json(body)
        .send()
        .await
        .expect("request sent")
}

async fn json_of(resp: reqwest::Response) -> Value {
    resp.json().await.expect("json body")
}

/// `data:` payloads of an SSE body, tolerant of CRLF line endings.
fn data_events(text: &str) -> Vec<String> {
    text.replace("\r\n", "\n")
        .split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

fn parsed(events: &[String]) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e.as_str() != "[DONE]")
        .map(|e| serde_json::from_str(e).expect("event json"))
        .collect()
}

fn content_of(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| {
            c.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
        })
        .collect()
}

fn chat(extra: Value) -> Value {
    let mut body = json!({
        "model": "mock-gpt",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi there"}
        ]
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    body
}

#[tokio::test]
async fn non_stream_shape_and_usage() {
    let server = MockServer::start().await.expect("start");
    let req = chat(json!({"mock": {"cached_tokens": 4}}));
    let resp = post(&server, "/v1/chat/completions", &req).await;
    assert_eq!(resp.status(), 200);
    let body = json_of(resp).await;
    let reply = format!("{REPLY_PREFIX}hi there");
    assert!(
        body["id"]
            .as_str()
            .expect("id")
            .starts_with("chatcmpl-mock-")
    );
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "mock-gpt");
    assert_eq!(body["system_fingerprint"], "fp_mock");
    assert_eq!(
        body["choices"],
        json!([{"index": 0, "message": {"role": "assistant", "content": reply, "refusal": null},
                "logprobs": null, "finish_reason": "stop"}])
    );
    // (2 words + 3) + (2 words + 3); reply has 7 words.
    assert_eq!(prompt_tokens(&req), 10);
    assert_eq!(completion_tokens(&reply), 7);
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17,
               "prompt_tokens_details": {"cached_tokens": 4},
               "completion_tokens_details": {"reasoning_tokens": 0}})
    );
}

#[tokio::test]
async fn stream_event_order_and_text() {
    let server = MockServer::start().await.expect("start");
    let resp = post(
        &server,
        "/v1/chat/completions",
        &chat(json!({"stream": true})),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let events = data_events(&resp.text().await.expect("body"));
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks = parsed(&events);
    // role, 4 content pieces (default chunks), finish; no usage chunk.
    assert_eq!(chunks.len(), 6);
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert_eq!(chunks[5]["choices"][0]["delta"], json!({}));
    assert_eq!(chunks[5]["choices"][0]["finish_reason"], "stop");
    assert_eq!(content_of(&chunks), format!("{REPLY_PREFIX}hi there"));
    for c in &chunks {
        assert_eq!(c["id"], chunks[0]["id"]);
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["model"], "mock-gpt");
        assert!(
            c.get("usage").is_none(),
            "no usage key without include_usage"
        );
    }
    for c in &chunks[1..5] {
        assert_eq!(c["choices"][0]["finish_reason"], Value::Null);
    }
}

#[tokio::test]
async fn stream_usage_chunk_only_with_include_usage() {
    let server = MockServer::start().await.expect("start");
    let req = chat(
        json!({"stream": true, "stream_options": {"include_usage": true},
                          "mock": {"chunks": 2}}),
    );
    let resp = post(&server, "/chat/completions", &req).await;
    let chunks = parsed(&data_events(&resp.text().await.expect("body")));
    assert_eq!(chunks.len(), 5); // role, 2 content, finish, usage
    let (usage_chunk, rest) = chunks.split_last().expect("chunks");
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"]["prompt_tokens"], 10);
    assert_eq!(usage_chunk["usage"]["completion_tokens"], 7);
    assert_eq!(usage_chunk["usage"]["total_tokens"], 17);
    assert!(
        rest.iter()
            .all(|c| c["usage"].is_null() && c.get("usage").is_some())
    );

    // usage:false suppresses it even when asked for, and in non-stream bodies.
    let req = chat(
        json!({"stream": true, "stream_options": {"include_usage": true},
                          "mock": {"usage": false}}),
    );
    let text = post(&server, "/v1/chat/completions", &req)
        .await
        .text()
        .await
        .expect("body");
    assert!(
        parsed(&data_events(&text))
            .iter()
            .all(|c| c["usage"].is_null())
    );
    let body = json_of(
        post(
            &server,
            "/v1/chat/completions",
            &chat(json!({"mock": {"usage": false}})),
        )
        .await,
    )
    .await;
    assert!(body.get("usage").is_none());
}

#[tokio::test]
async fn tool_call_knob_answers_with_tool_calls_whole_or_in_pieces() {
    let server = MockServer::start().await.expect("start");
    let call = json!({"name": "get_weather", "arguments": {"city": "Paris"}, "pieces": 3});
    let body = json_of(
        post(
            &server,
            "/v1/chat/completions",
            &chat(json!({"mock": {"tool_call": call}})),
        )
        .await,
    )
    .await;
    let id = body["choices"][0]["message"]["tool_calls"][0]["id"].clone();
    assert!(id.as_str().unwrap().starts_with("call_mock_"), "{id}");
    assert_eq!(
        body["choices"][0],
        json!({"index": 0, "logprobs": null, "finish_reason": "tool_calls",
               "message": {"role": "assistant", "content": null, "refusal": null, "tool_calls": [
                   {"id": id, "type": "function",
                    "function": {"name": "get_weather", "arguments": r#"{"city":"Paris"}"#}}]}})
    );
    // Name (1 word) + compact arguments (1 word).
    assert_eq!(body["usage"]["completion_tokens"], 2);

    let streamed = chat(json!({"stream": true, "mock": {"tool_call": call}}));
    let text = post(&server, "/v1/chat/completions", &streamed)
        .await
        .text()
        .await
        .unwrap();
    let chunks = parsed(&data_events(&text));
    assert_eq!(
        content_of(&chunks),
        "",
        "no content deltas for a tool-only answer"
    );
    let deltas: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c.pointer("/choices/0/delta/tool_calls/0"))
        .collect();
    assert_eq!(deltas.len(), 4, "the opening delta, then 3 pieces");
    assert_eq!(
        deltas[0]["function"],
        json!({"name": "get_weather", "arguments": ""})
    );
    assert!(deltas[0]["id"].as_str().unwrap().starts_with("call_mock_"));
    let arguments: String = deltas[1..]
        .iter()
        .map(|d| d["function"]["arguments"].as_str().unwrap())
        .collect();
    assert_eq!(arguments, r#"{"city":"Paris"}"#);
    assert!(
        deltas[1..]
            .iter()
            .all(|d| d["index"] == 0 && d.get("id").is_none())
    );
    let finish = chunks.iter().find_map(|c| {
        c.pointer("/choices/0/finish_reason")
            .and_then(Value::as_str)
    });
    assert_eq!(finish, Some("tool_calls"));
}

#[tokio::test]
async fn echo_tool_result_replies_with_the_tool_result() {
    let server = MockServer::start().await.expect("start");
    let request = json!({"model": "mock-gpt", "mock": {"echo_tool_result": true}, "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "21 C and sunny"}
    ]});
    let body = json_of(post(&server, "/v1/chat/completions", &request).await).await;
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "The tool said: 21 C and sunny"
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn usage_in_choice_moonshot_quirk() {
    let server = MockServer::start().await.expect("start");
    let req = chat(
        json!({"stream": true, "stream_options": {"include_usage": true},
                          "mock": {"usage_in_choice": true}}),
    );
    let events = data_events(
        &post(&server, "/v1/chat/completions", &req)
            .await
            .text()
            .await
            .expect("body"),
    );
    let chunks = parsed(&events);
    let finish = chunks.last().expect("finish chunk");
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(finish["choices"][0]["usage"]["total_tokens"], 17);
    assert!(
        chunks.iter().all(|c| c["choices"] != json!([])),
        "no separate usage chunk"
    );
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
}

#[tokio::test]
async fn fail_times_counts_per_key_and_reset_clears() {
    let server = MockServer::start().await.expect("start");
    let failing =
        |key: &str| chat(json!({"mock": {"fail_status": 503, "fail_times": 2, "fail_key": key}}));
    for _ in 0..2 {
        let resp = post(&server, "/v1/chat/completions", &failing("a")).await;
        assert_eq!(resp.status(), 503);
        assert_eq!(
            json_of(resp).await,
            json!({"error": {"message": "mock failure 503", "type": "server_error", "param": null, "code": null}})
        );
    }
    assert_eq!(
        post(&server, "/v1/chat/completions", &failing("a"))
            .await
            .status(),
        200
    );
    assert_eq!(
        post(&server, "/v1/chat/completions", &failing("b"))
            .await
            .status(),
        503
    );

    let reset = reqwest::Client::new()
        .post(format!("{}/mock/reset", server.base_url()))
        .send()
        .await
        .expect("reset");
    assert_eq!(reset.status(), 200);
    assert!(server.journal().is_empty());
    assert_eq!(
        post(&server, "/v1/chat/completions", &failing("a"))
            .await
            .status(),
        503
    );

    // Without fail_times every request fails; 4xx are client errors.
    let resp = post(
        &server,
        "/v1/chat/completions",
        &chat(json!({"mock": {"fail_status": 429}})),
    )
    .await;
    assert_eq!(resp.status(), 429);
    assert_eq!(
        json_of(resp).await["error"]["type"],
        "invalid_request_error"
    );
}

#[tokio::test]
async fn drop_after_chunks_aborts_the_stream() {
    let server = MockServer::start().await.expect("start");
    let req = chat(json!({"stream": true, "mock": {"drop_after_chunks": 2}}));
    let mut resp = post(&server, "/v1/chat/completions", &req).await;
    assert_eq!(resp.status(), 200);
    let mut received = Vec::new();
    let error = loop {
        match resp.chunk().await {
            Ok(Some(bytes)) => received.extend_from_slice(&bytes),
            Ok(None) => panic!("stream ended cleanly"),
            Err(e) => break e,
        }
    };
    assert!(
        error.is_body() || error.is_decode() || error.is_request(),
        "{error:?}"
    );
    let events = data_events(&String::from_utf8_lossy(&received));
    assert!(!events.iter().any(|e| e == "[DONE]"));
    // 7 words in 4 pieces: 2+2+2+1, so two pieces carry four words.
    assert_eq!(
        content_of(&parsed(&events)),
        "Hello from mock-upstream! You "
    );
}

#[tokio::test]
async fn mid_stream_error_keepalive_and_split_events() {
    let server = MockServer::start().await.expect("start");
    let req = chat(json!({"stream": true, "mock": {"mid_stream_error": true, "keepalive": true}}));
    let text = post(&server, "/v1/chat/completions", &req)
        .await
        .text()
        .await
        .expect("body");
    assert!(text.starts_with(": keep-alive\n\n"));
    let events = data_events(&text);
    assert!(!events.iter().any(|e| e == "[DONE]"));
    let chunks = parsed(&events);
    assert_eq!(
        chunks.last().expect("error event")["error"]["message"],
        "mock mid-stream failure"
    );

    let req =
        chat(json!({"stream": true, "mock": {"split_events": true, "reply": "héllo wörld ✓"}}));
    let mut resp = post(&server, "/v1/chat/completions", &req).await;
    let mut raw = Vec::new();
    while let Some(bytes) = resp.chunk().await.expect("chunk") {
        raw.extend_from_slice(&bytes);
    }
    let text = String::from_utf8(raw).expect("utf8 once reassembled");
    assert!(text.contains("\r\n\r\n"));
    let events = data_events(&text);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    assert_eq!(content_of(&parsed(&events)), "héllo wörld ✓");
}

#[tokio::test]
async fn journal_records_everything() {
    let server = MockServer::start().await.expect("start");
    let req = chat(json!({"x_custom": {"a": 1}, "mock": {"reply": "ok"}}));
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", server.base_url()))
        .bearer_auth("sk-anything")
        .header("X-Trace", "t1")
        .json(&req)
        .send()
        .await
        .expect("send");
    assert_eq!(
        json_of(resp).await["choices"][0]["message"]["content"],
        "ok"
    );
    reqwest::Client::new()
        .post(format!("{}/v1/embeddings", server.base_url()))
        .body("not json")
        .send()
        .await
        .expect("send");

    let journal = server.journal();
    assert_eq!(journal.len(), 2);
    assert_eq!(journal[0].method, "POST");
    assert_eq!(journal[0].path, "/v1/chat/completions");
    assert_eq!(journal[0].body, req);
    assert_eq!(
        journal[0].header("authorization"),
        Some("Bearer sk-anything")
    );
    assert_eq!(journal[0].header("x-trace"), Some("t1"));
    assert_eq!(journal[1].body, Value::Null);

    // The HTTP view matches and does not record itself.
    let over_http = json_of(
        reqwest::get(format!("{}/mock/journal", server.base_url()))
            .await
            .expect("journal"),
    )
    .await;
    assert_eq!(over_http[0]["body"]["x_custom"], json!({"a": 1}));
    assert_eq!(over_http.as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn api_key_is_enforced() {
    let defaults = Defaults {
        api_key: Some("sk-test".into()),
        ..Defaults::default()
    };
    let server = MockServer::start_with(defaults).await.expect("start");
    let client = reqwest::Client::new();
    let url = format!("{}/v1/models", server.base_url());
    for auth in [None, Some("wrong")] {
        let mut req = client.get(&url);
        if let Some(key) = auth {
            req = req.bearer_auth(key);
        }
        let resp = req.send().await.expect("send");
        assert_eq!(resp.status(), 401);
        assert_eq!(
            json_of(resp).await,
            json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                             "param": null, "code": "invalid_api_key"}})
        );
    }
    let resp = client
        .get(&url)
        .bearer_auth("sk-test")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let models = json_of(resp).await;
    assert_eq!(models["object"], "list");
    assert_eq!(
        models["data"][0],
        json!({"id": "mock-gpt", "object": "model", "created": 1_700_000_000, "owned_by": "mock"})
    );
    assert_eq!(models["data"].as_array().map(Vec::len), Some(3));
    // Control endpoints stay open for out-of-process tests.
    let journal = client
        .get(format!("{}/mock/journal", server.base_url()))
        .send()
        .await
        .expect("send");
    assert_eq!(journal.status(), 200);
}

#[tokio::test]
async fn embeddings_shape() {
    let server = MockServer::start().await.expect("start");
    let req = json!({"model": "mock-embed", "input": ["hello world", "x"]});
    let body = json_of(post(&server, "/v1/embeddings", &req).await).await;
    assert_eq!(body["object"], "list");
    assert_eq!(body["model"], "mock-embed");
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 3, "total_tokens": 3})
    );
    let data = body["data"].as_array().expect("data");
    assert_eq!(data.len(), 2);
    for (i, item) in data.iter().enumerate() {
        assert_eq!(item["object"], "embedding");
        assert_eq!(item["index"], i);
        assert_eq!(item["embedding"].as_array().map(Vec::len), Some(8));
    }
    let again = json_of(
        post(
            &server,
            "/embeddings",
            &json!({"model": "m", "input": "hello world"}),
        )
        .await,
    )
    .await;
    assert_eq!(again["data"][0]["embedding"], data[0]["embedding"]);
}

#[tokio::test]
async fn bad_requests_are_400() {
    let server = MockServer::start().await.expect("start");
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", server.base_url()))
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 400);
    assert_eq!(
        json_of(resp).await["error"]["type"],
        "invalid_request_error"
    );
    let resp = post(&server, "/v1/chat/completions", &json!({"messages": []})).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(json_of(resp).await["error"]["param"], "model");
    let resp = post(&server, "/v1/chat/completions", &json!({"model": "m"})).await;
    assert_eq!(json_of(resp).await["error"]["param"], "messages");
    let resp = post(
        &server,
        "/v1/chat/completions",
        &chat(json!({"mock": {"typo": 1}})),
    )
    .await;
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn timing_knobs_and_hang() {
    let server = MockServer::start().await.expect("start");
    let start = Instant::now();
    let req =
        chat(json!({"stream": true, "mock": {"ttfb_ms": 50, "chunk_delay_ms": 20, "chunks": 2}}));
    let resp = post(&server, "/v1/chat/completions", &req).await;
    assert!(start.elapsed() >= Duration::from_millis(50), "ttfb");
    resp.text().await.expect("body");
    // role, 2 content, finish, [DONE]: 4 gaps of 20ms after the ttfb.
    assert!(start.elapsed() >= Duration::from_millis(130), "chunk delay");

    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(150))
        .build()
        .expect("client");
    let err = client
        .post(format!("{}/v1/chat/completions", server.base_url()))
        .json(&chat(json!({"mock": {"hang": true}})))
        .send()
        .await
        .expect_err("hang must time out");
    assert!(err.is_timeout());
}

#[tokio::test]
async fn shutdown_releases_hanging_requests() {
    let server = MockServer::start().await.expect("start");
    let url = format!("{}/v1/chat/completions", server.base_url());
    let hanging = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .json(&chat(json!({"mock": {"hang": true}})))
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let start = Instant::now();
    let base = server.base_url();
    server.shutdown().await.expect("shutdown");
    assert!(start.elapsed() < Duration::from_secs(1));
    let result = hanging.await.expect("join");
    assert!(result.is_err() || result.is_ok_and(|r| r.status() == 503));
    assert!(
        reqwest::get(format!("{base}/v1/models")).await.is_err(),
        "listener closed"
    );
}

/// Billing knobs: the `service_tier` OpenAI says served the request, in the body and in
/// every chunk; DashScope's explicit-cache usage shape.
#[tokio::test]
async fn service_tier_and_dashscope_cache_usage() {
    let server = MockServer::start().await.expect("start");
    let body = json_of(
        post(
            &server,
            "/v1/chat/completions",
            &chat(json!({"mock": {"service_tier": "priority"}})),
        )
        .await,
    )
    .await;
    assert_eq!(body["service_tier"], "priority");
    let streamed = post(
        &server,
        "/v1/chat/completions",
        &chat(
            json!({"stream": true, "stream_options": {"include_usage": true},
            "mock": {"service_tier": "flex"}}),
        ),
    )
    .await
    .text()
    .await
    .expect("body");
    let chunks = parsed(&data_events(&streamed));
    assert!(!chunks.is_empty());
    assert!(
        chunks.iter().all(|c| c["service_tier"] == "flex"),
        "{streamed}"
    );
    let explicit = json!({"mock": {"usage_style": "dashscope_explicit",
        "cached_tokens": 2, "cache_write_tokens": 5}});
    let body = json_of(post(&server, "/v1/chat/completions", &chat(explicit)).await).await;
    assert_eq!(
        body["usage"]["prompt_tokens_details"],
        json!({"cached_tokens": 2, "cache_creation_input_tokens": 5,
               "cache_creation": {"ephemeral_5m_input_tokens": 5}, "cache_type": "ephemeral"})
    );
    assert!(
        body.get("service_tier").is_none(),
        "absent unless asked for"
    );
}

#[tokio::test]
async fn echo_key_repeats_the_credential_in_the_error() {
    let server = MockServer::start().await.expect("start");
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{}/v1/chat/completions", server.base_url()))
        .bearer_auth("opaque-secret-1234")
        .json(&chat(
            json!({"mock": {"echo_key": true, "fail_status": 429}}),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let message = json_of(response).await["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("opaque-secret-1234"), "{message}");
    assert!(message.contains("Bearer opaque-secret-1234"), "{message}");

    let echoing = MockServer::start_with(Defaults {
        echo_key: true,
        ..Defaults::default()
    })
    .await
    .expect("start");
    let response = client
        .post(format!("{}/v1/chat/completions", echoing.base_url()))
        .header("x-api-key", "another-secret-5678")
        .json(&chat(json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body = json_of(response).await;
    assert!(body.to_string().contains("another-secret-5678"), "{body}");
}
