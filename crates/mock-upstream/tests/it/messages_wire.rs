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
        "model": "claude-mock",
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
    assert_eq!(body["model"], "claude-mock");
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
