//! Wire-level tests of the Anthropic Messages dialect (`POST /v1/messages`).

use mock_upstream::{Defaults, MockServer, REPLY_PREFIX, anthropic_prompt_tokens};
use serde_json::{Value, json};

async fn post(server: &MockServer, path: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}{path}", server.base_url()))
        .header("x-api-key", "sk-ant-test")
        .json(body)
        .send()
        .await
        .expect("request sent")
}

fn request(extra: Value) -> Value {
    let mut body = json!({
        "model": "claude-sonnet-4-6",
        "max_tokens": 100,
        "system": [{"type": "text", "text": "be brief"}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi there"}]}]
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    body
}

/// `(event name, data)` of every event of an SSE body.
fn events(text: &str) -> Vec<(String, Value)> {
    text.replace("\r\n", "\n")
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let name = e
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or("");
            let data = e
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .expect("data line");
            (
                name.to_owned(),
                serde_json::from_str(data).expect("json data"),
            )
        })
        .collect()
}

#[tokio::test]
async fn non_stream_message_shape_and_usage() {
    let server = MockServer::start().await.expect("start");
    let req = request(json!({"mock": {"cache_read_tokens": 3, "cache_write_tokens": 4}}));
    let resp = post(&server, "/v1/messages", &req).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    let reply = format!("{REPLY_PREFIX}hi there");
    // (2 + 3) system + (2 + 3) user = 10 prompt tokens, 3 read and 4 written of them.
    assert_eq!(anthropic_prompt_tokens(&req), 10);
    assert!(body["id"].as_str().expect("id").starts_with("msg_mock_"));
    assert_eq!(body["type"], "message");
    assert_eq!(body["model"], "claude-sonnet-4-6");
    assert_eq!(body["content"], json!([{"type": "text", "text": reply}]));
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(
        body["usage"],
        json!({"input_tokens": 3, "cache_creation_input_tokens": 4,
               "cache_read_input_tokens": 3, "output_tokens": 7,
               "cache_creation": {"ephemeral_5m_input_tokens": 4, "ephemeral_1h_input_tokens": 0}})
    );
    // Also served without the /v1 prefix.
    assert_eq!(post(&server, "/messages", &req).await.status(), 200);
    // 1-hour writes count in cache_creation_input_tokens and are broken down apart.
    let hour = request(json!({"mock": {"cache_write_tokens": 4, "cache_write_1h_tokens": 2}}));
    let body: Value = post(&server, "/v1/messages", &hour)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        (
            body["usage"]["input_tokens"].clone(),
            body["usage"]["cache_creation_input_tokens"].clone()
        ),
        (json!(4), json!(6))
    );
    assert_eq!(
        body["usage"]["cache_creation"],
        json!({"ephemeral_5m_input_tokens": 4, "ephemeral_1h_input_tokens": 2})
    );
}

#[tokio::test]
async fn stream_event_order_text_and_usage() {
    let server = MockServer::start().await.expect("start");
    let resp = post(
        &server,
        "/v1/messages",
        &request(json!({"stream": true, "mock": {"chunks": 2}})),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let events = events(&resp.text().await.expect("body"));
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    for (name, data) in &events {
        assert_eq!(
            data["type"],
            name.as_str(),
            "event name repeats the data type"
        );
    }
    assert_eq!(events[0].1["message"]["usage"]["input_tokens"], 10);
    let text: String = events
        .iter()
        .filter_map(|(_, d)| d.pointer("/delta/text").and_then(Value::as_str))
        .collect();
    assert_eq!(text, format!("{REPLY_PREFIX}hi there"));
    assert_eq!(events[6].1["delta"]["stop_reason"], "end_turn");
    assert_eq!(events[6].1["usage"]["output_tokens"], 7);
}

#[tokio::test]
async fn tool_calls_stream_their_arguments_in_pieces() {
    let server = MockServer::start().await.expect("start");
    let calls = json!([
        {"name": "get_weather", "arguments": {"city": "Paris"}, "pieces": 3},
        {"name": "now"}
    ]);
    let req = request(json!({"stream": true, "mock": {"tool_call": calls}}));
    let events = events(
        &post(&server, "/v1/messages", &req)
            .await
            .text()
            .await
            .expect("body"),
    );
    let starts: Vec<&Value> = events
        .iter()
        .filter(|(n, _)| n == "content_block_start")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(starts.len(), 2, "only tool blocks without a reply knob");
    assert_eq!(starts[0]["index"], 0);
    assert_eq!(starts[0]["content_block"]["type"], "tool_use");
    assert_eq!(starts[0]["content_block"]["name"], "get_weather");
    assert_eq!(starts[1]["index"], 1);
    let pieces: Vec<&str> = events
        .iter()
        .filter(|(_, d)| d["index"] == 0)
        .filter_map(|(_, d)| d.pointer("/delta/partial_json").and_then(Value::as_str))
        .collect();
    assert_eq!(
        pieces.len(),
        4,
        "an empty opening piece, then 3: {pieces:?}"
    );
    assert_eq!(pieces[0], "");
    assert_eq!(pieces.concat(), r#"{"city":"Paris"}"#);
    let delta = &events[events.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    // get_weather + {"city":"Paris"} + now + {} = 4 words.
    assert_eq!(delta["usage"]["output_tokens"], 4);

    // Not streamed: the same blocks, inputs as objects; a reply knob adds text first.
    let req = request(json!({"mock": {"tool_call": calls, "reply": "Checking."}}));
    let body: Value = post(&server, "/v1/messages", &req)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        body["content"][0],
        json!({"type": "text", "text": "Checking."})
    );
    assert_eq!(body["content"][1]["input"], json!({"city": "Paris"}));
    assert_eq!(body["content"][2]["input"], json!({}));
    assert_eq!(body["stop_reason"], "tool_use");
    assert_eq!(body["usage"]["output_tokens"], 5);
}

#[tokio::test]
async fn max_tokens_cuts_the_reply() {
    let server = MockServer::start().await.expect("start");
    let body: Value = post(&server, "/v1/messages", &request(json!({"max_tokens": 3})))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["content"][0]["text"], "Hello from mock-upstream!");
    assert_eq!(body["stop_reason"], "max_tokens");
    assert_eq!(body["usage"]["output_tokens"], 3);
}

#[tokio::test]
async fn in_band_error_event_ends_the_stream() {
    let server = MockServer::start().await.expect("start");
    let req = request(json!({"stream": true, "mock": {"error_event": true}}));
    let events = events(
        &post(&server, "/v1/messages", &req)
            .await
            .text()
            .await
            .expect("body"),
    );
    let (name, data) = events.last().expect("events");
    assert_eq!(name, "error");
    assert_eq!(
        data,
        &json!({"type": "error", "error": {"type": "overloaded_error", "message": "mock in-band error"}})
    );
    assert!(events.iter().all(|(n, _)| n != "message_stop"));
}

#[tokio::test]
async fn failures_and_bad_requests_use_anthropic_error_bodies() {
    let server = MockServer::start().await.expect("start");
    let resp = post(
        &server,
        "/v1/messages",
        &request(json!({"mock": {"fail_status": 529}})),
    )
    .await;
    assert_eq!(resp.status(), 529);
    assert_eq!(
        resp.json::<Value>().await.expect("json"),
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "mock failure 529"}})
    );
    let mut missing = request(json!({}));
    missing
        .as_object_mut()
        .expect("object")
        .remove("max_tokens");
    let resp = post(&server, "/v1/messages", &missing).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<Value>().await.expect("json"),
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"}})
    );
}

#[tokio::test]
async fn x_api_key_is_enforced_and_journaled() {
    let server = MockServer::start_with(Defaults {
        api_key: Some("sk-ant-test".into()),
        ..Defaults::default()
    })
    .await
    .expect("start");
    assert_eq!(
        post(&server, "/v1/messages", &request(json!({})))
            .await
            .status(),
        200
    );
    let bearer_only = reqwest::Client::new()
        .post(format!("{}/v1/messages", server.base_url()))
        .bearer_auth("sk-ant-test")
        .json(&request(json!({})))
        .send()
        .await
        .expect("sent");
    assert_eq!(bearer_only.status(), 401);
    assert_eq!(
        bearer_only.json::<Value>().await.expect("json"),
        json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}})
    );
    let journal = server.journal();
    assert_eq!(journal.len(), 2);
    assert_eq!(journal[0].header("x-api-key"), Some("sk-ant-test"));
    assert_eq!(journal[0].body["max_tokens"], 100);
}

/// Status and Anthropic error message of a request the strict dialect refuses.
async fn refusal(server: &MockServer, body: &Value) -> (u16, String) {
    let resp = post(server, "/v1/messages", body).await;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["type"], "error", "{body}");
    (
        status,
        body["error"]["message"].as_str().unwrap_or("").to_owned(),
    )
}

#[tokio::test]
async fn retired_and_unknown_model_ids_are_not_found() {
    let server = MockServer::start().await.expect("start");
    for id in [
        "claude-sonnet-4-20250514",
        "claude-opus-4-1-20250805",
        "claude-mock",
    ] {
        let (status, message) = refusal(&server, &request(json!({"model": id}))).await;
        assert_eq!((status, message), (404, format!("model: {id}")));
    }
    for id in mock_upstream::models::ANTHROPIC.iter().map(|m| m.id) {
        let resp = post(&server, "/v1/messages", &request(json!({"model": id}))).await;
        assert_eq!(resp.status(), 200, "{id}");
    }
}

#[tokio::test]
async fn sampling_rules_follow_the_model_family() {
    let server = MockServer::start().await.expect("start");
    let both = json!({"model": "claude-sonnet-4-6", "temperature": 0.5, "top_p": 0.9});
    assert_eq!(
        refusal(&server, &request(both)).await,
        (
            400,
            "temperature and top_p cannot both be specified for this model. Please use only one."
                .into()
        )
    );
    let one = json!({"model": "claude-sonnet-4-6", "temperature": 0.5});
    assert_eq!(
        post(&server, "/v1/messages", &request(one)).await.status(),
        200
    );
    for name in ["temperature", "top_p", "top_k"] {
        let body = request(json!({"model": "claude-opus-4-7", name: 1}));
        assert_eq!(
            refusal(&server, &body).await,
            (400, format!("`{name}` is deprecated for this model."))
        );
    }
}

#[tokio::test]
async fn thinking_forms_and_efforts_follow_the_model() {
    let server = MockServer::start().await.expect("start");
    let enabled = json!({"type": "enabled", "budget_tokens": 1024});
    let (status, message) = refusal(
        &server,
        &request(json!({"model": "claude-opus-4-7", "max_tokens": 2000, "thinking": enabled})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        message.starts_with("\"thinking.type.enabled\" is not supported"),
        "{message}"
    );
    let adaptive = json!({"type": "adaptive"});
    let (status, _) = refusal(
        &server,
        &request(json!({"model": "claude-haiku-4-5", "thinking": adaptive})),
    )
    .await;
    assert_eq!(status, 400);
    let xhigh = json!({"model": "claude-sonnet-4-6", "thinking": adaptive,
                       "output_config": {"effort": "xhigh"}});
    assert_eq!(refusal(&server, &request(xhigh)).await.0, 400);
    let ok = json!({"model": "claude-opus-4-7", "thinking": adaptive,
                    "output_config": {"effort": "xhigh"}});
    let resp = post(&server, "/v1/messages", &request(ok)).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    let thought = mock_upstream::messages::thinking::THOUGHT;
    assert_eq!(
        body["content"][0],
        json!({"type": "thinking", "thinking": thought,
               "signature": mock_upstream::messages::thinking::sign(thought)})
    );
    let small_budget =
        json!({"model": "claude-haiku-4-5", "max_tokens": 1024, "thinking": enabled});
    assert_eq!(refusal(&server, &request(small_budget)).await.0, 400);
}

#[tokio::test]
async fn thinking_refuses_a_forced_tool_and_needs_its_blocks_back() {
    let server = MockServer::start().await.expect("start");
    let tools = json!([{"name": "f", "input_schema": {"type": "object"}}]);
    let adaptive = json!({"type": "adaptive"});
    for choice in [json!({"type": "any"}), json!({"type": "tool", "name": "f"})] {
        let body = request(json!({"model": "claude-sonnet-4-6", "thinking": adaptive,
                                  "tools": tools, "tool_choice": choice}));
        assert_eq!(
            refusal(&server, &body).await,
            (
                400,
                "Thinking may not be enabled when tool_choice forces tool use.".into()
            )
        );
    }
    let thought = mock_upstream::messages::thinking::THOUGHT;
    let signed = json!({"type": "thinking", "thinking": thought,
                        "signature": mock_upstream::messages::thinking::sign(thought)});
    let call = json!({"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}});
    let loop_turn = |assistant: Value| {
        request(
            json!({"model": "claude-sonnet-4-6", "thinking": adaptive, "tools": tools,
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "go"}]},
                {"role": "assistant", "content": assistant},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}]}
            ]}),
        )
    };
    let (status, message) = refusal(&server, &loop_turn(json!([call]))).await;
    assert_eq!(status, 400);
    assert!(message.starts_with("messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `tool_use`"), "{message}");
    let mut edited = signed.clone();
    edited["thinking"] = json!("edited");
    let (status, message) = refusal(&server, &loop_turn(json!([edited, call]))).await;
    assert_eq!(
        (status, message.as_str()),
        (
            400,
            "messages.1.content.0: Invalid `signature` in `thinking` block"
        )
    );
    let resp = post(&server, "/v1/messages", &loop_turn(json!([signed, call]))).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_thinking_stream_signs_its_block_with_a_signature_delta() {
    let server = MockServer::start().await.expect("start");
    let body = request(json!({"model": "claude-opus-4-7", "stream": true,
        "thinking": {"type": "adaptive"}, "mock": {"redacted_thinking": true}}));
    let text = post(&server, "/v1/messages", &body)
        .await
        .text()
        .await
        .expect("body");
    let events = events(&text);
    let thought = mock_upstream::messages::thinking::THOUGHT;
    let deltas: Vec<&Value> = events
        .iter()
        .filter(|(name, data)| name == "content_block_delta" && data["index"] == 0)
        .map(|(_, data)| &data["delta"])
        .collect();
    assert_eq!(
        deltas,
        [
            &json!({"type": "thinking_delta", "thinking": thought}),
            &json!({"type": "signature_delta", "signature": mock_upstream::messages::thinking::sign(thought)})
        ]
    );
    let redacted = events
        .iter()
        .find(|(name, data)| name == "content_block_start" && data["index"] == 1)
        .expect("second block");
    assert_eq!(redacted.1["content_block"]["type"], "redacted_thinking");
}
