//! The strict mock: each vendor dialect refuses what the vendor's API refuses (retired
//! model ids, fixed Kimi parameters, JSON Schema in Gemini `parameters`, penalties on
//! Gemini 2.5/3.x), in the vendor's own status and shape.

use mock_upstream::MockServer;
use serde_json::{Value, json};

async fn post(server: &MockServer, path: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", server.base_url()))
        .json(&body)
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json body"))
}

fn chat(model: &str, extra: Value) -> Value {
    let mut body = json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    body
}

#[tokio::test]
async fn retired_vendor_ids_are_refused_in_each_vendors_shape() {
    let server = MockServer::start().await.unwrap();
    let path = "/v1/chat/completions";
    let (status, body) = post(&server, path, chat("deepseek-chat", json!({}))).await;
    assert_eq!(
        (status, body["error"]["message"].as_str()),
        (400, Some("Model Not Exist"))
    );
    let (status, body) = post(&server, path, chat("glm-4-flash", json!({}))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("1211"))
    );
    let (status, body) = post(&server, path, chat("doubao-1-5-pro-32k-250115", json!({}))).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "InvalidEndpointOrModel.NotFound");
    for live in [
        "deepseek-flash",
        "glm-4-flash-250414",
        "doubao-seed-2-0-pro-260215",
        "mock-gpt",
    ] {
        let (status, body) = post(&server, path, chat(live, json!({}))).await;
        assert_eq!(status, 200, "{live}: {body}");
    }
    let gemini = "/v1beta/models/gemini-2.5-pro:generateContent";
    let contents = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    let (status, body) = post(&server, gemini, contents).await;
    assert_eq!(
        (status, body["error"]["status"].as_str()),
        (404, Some("NOT_FOUND"))
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn kimi_fixed_parameters_cannot_be_modified() {
    let server = MockServer::start().await.unwrap();
    let path = "/v1/chat/completions";
    for (name, value) in [
        ("temperature", json!(0.3)),
        ("n", json!(2)),
        ("presence_penalty", json!(0.4)),
    ] {
        let (status, body) = post(&server, path, chat("kimi-k2.6", json!({ name: value }))).await;
        assert_eq!(status, 400, "{name}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(name),
            "{body}"
        );
    }
    let (status, _) = post(
        &server,
        path,
        chat("kimi-k2-thinking", json!({"temperature": 0.3})),
    )
    .await;
    assert_eq!(status, 200, "kimi-k2-thinking takes a temperature");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn gemini_refuses_json_schema_in_parameters_and_penalties() {
    let server = MockServer::start().await.unwrap();
    let path = "/v1beta/models/gemini-3.5-flash:generateContent";
    let schema = json!({"type": "object", "properties": {"q": {"type": "string"}}, "additionalProperties": false});
    let with_tool = |member: &str| {
        json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
               "tools": [{"functionDeclarations": [{"name": "find", member: schema}]}]})
    };
    let (status, body) = post(&server, path, with_tool("parameters")).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("additionalProperties")
    );
    assert_eq!(
        post(&server, path, with_tool("parametersJsonSchema"))
            .await
            .0,
        200
    );
    let penalty = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                         "generationConfig": {"frequencyPenalty": 0.5}});
    let (status, body) = post(&server, path, penalty).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        "Penalty is not enabled for models/gemini-3.5-flash"
    );
    server.shutdown().await.unwrap();
}
