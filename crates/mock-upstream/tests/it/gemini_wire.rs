//! Wire-level tests of the Gemini dialect
//! (`POST /v1beta/models/{model}:generateContent` / `:streamGenerateContent?alt=sse`).

use mock_upstream::{Defaults, MockServer, REPLY_PREFIX};
use serde_json::{Value, json};

const KEY: &str = "AIza-test";

async fn post(
    server: &MockServer,
    path: &str,
    key: Option<&str>,
    body: &Value,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("{}{path}", server.base_url()))
        .json(body);
    if let Some(key) = key {
        request = request.header("x-goog-api-key", key);
    }
    request.send().await.expect("request sent")
}

fn request(extra: Value) -> Value {
    let mut body = json!({
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "contents": [{"role": "user", "parts": [{"text": "hi there"}]}]
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    body
}

async fn keyed_server() -> MockServer {
    MockServer::start_with(Defaults {
        api_key: Some(KEY.into()),
        ..Defaults::default()
    })
    .await
    .expect("start")
}

#[tokio::test]
async fn answer_shape_usage_and_knobs() {
    let server = keyed_server().await;
    let req = request(json!({"mock": {"cached_tokens": 2, "reasoning": "hmm ok"}}));
    let resp = post(
        &server,
        "/v1beta/models/gemini-3.5-flash:generateContent",
        Some(KEY),
        &req,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(
        body["candidates"][0]["content"]["parts"],
        json!([{"text": "hmm ok", "thought": true}, {"text": format!("{REPLY_PREFIX}hi there")}])
    );
    assert_eq!(body["candidates"][0]["finishReason"], "STOP");
    assert_eq!(body["modelVersion"], "gemini-3.5-flash");
    // (2 + 3) system + (2 + 3) user; 7 reply words; 2 thinking words.
    assert_eq!(
        body["usageMetadata"],
        json!({"promptTokenCount": 10, "candidatesTokenCount": 7, "totalTokenCount": 19,
               "cachedContentTokenCount": 2, "thoughtsTokenCount": 2})
    );
}

#[tokio::test]
async fn streams_need_alt_sse_and_end_with_finish_and_usage() {
    let server = MockServer::start().await.expect("start");
    let path = "/v1beta/models/gemini-3.5-flash:streamGenerateContent";
    let req = request(json!({"mock": {"chunks": 2}}));
    assert_eq!(post(&server, path, None, &req).await.status(), 400);
    let resp = post(&server, &format!("{path}?alt=sse"), None, &req).await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.expect("body");
    let events: Vec<Value> = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).expect("json"))
        .collect();
    assert_eq!(events.len(), 2);
    assert!(events[0]["candidates"][0].get("finishReason").is_none());
    assert_eq!(events[1]["candidates"][0]["finishReason"], "STOP");
    assert_eq!(events[1]["usageMetadata"]["candidatesTokenCount"], 7);
    let joined: String = events
        .iter()
        .map(|e| {
            e["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(joined, format!("{REPLY_PREFIX}hi there"));
}

#[tokio::test]
async fn keys_travel_in_the_header_only() {
    let server = keyed_server().await;
    let path = "/v1beta/models/gemini-3.5-flash:generateContent";
    let missing = post(&server, path, None, &request(json!({}))).await;
    assert_eq!(missing.status(), 400);
    let body: Value = missing.json().await.expect("json");
    assert_eq!(body["error"]["details"][0]["reason"], "API_KEY_INVALID");
    let in_url = post(
        &server,
        &format!("{path}?key={KEY}"),
        Some(KEY),
        &request(json!({})),
    )
    .await;
    assert_eq!(in_url.status(), 400);
}

#[tokio::test]
async fn unknown_members_and_scripted_failures_use_gemini_errors() {
    let server = MockServer::start().await.expect("start");
    let path = "/v1beta/models/gemini-3.5-flash:generateContent";
    let resp = post(&server, path, None, &request(json!({"messages": []}))).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    let resp = post(
        &server,
        path,
        None,
        &request(json!({"mock": {"fail_status": 429}})),
    )
    .await;
    assert_eq!(resp.status(), 429);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(
        body,
        json!({"error": {"code": 429, "message": "mock failure 429", "status": "RESOURCE_EXHAUSTED"}})
    );
}
