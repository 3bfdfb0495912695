//! The relayed routes' fast path (`api::relayed`): every relayed route answers as the
//! router did (request ids on answers and records, CORS, error shapes, body limits), and
//! everything else on those paths still reaches the router.

use serde_json::{Value, json};

use crate::harness::*;
use tokenhub::accounts::KeyOptions;
use tokenhub::ledger::money::Nanos;

/// Each relayed route with a body it serves.
fn relayed_routes() -> Vec<(&'static str, Value)> {
    vec![
        (
            "/v1/chat/completions",
            json!({"model": "mock-gpt", "messages": user_says("hi")}),
        ),
        (
            "/v1/completions",
            json!({"model": "mock-gpt", "prompt": "hi"}),
        ),
        (
            "/v1/embeddings",
            json!({"model": "mock-gpt", "input": "hi"}),
        ),
        (
            "/v1/messages",
            json!({"model": "mock-gpt", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}),
        ),
        ("/v1/responses", json!({"model": "mock-gpt", "input": "hi"})),
    ]
}

#[tokio::test]
async fn every_relayed_route_names_its_answer_and_record_with_one_request_id() {
    let h = Harness::start_with(Backend::Sqlite, |settings, _| {
        settings.cors_allowed_origins = vec!["https://app.example".into()];
    })
    .await;
    let (_, key) = h
        .user_with_key("fast", Nanos::from_usd(5), KeyOptions::default())
        .await;
    let mut ids = Vec::new();
    for (path, body) in relayed_routes() {
        // A query string does not change the route, as in axum.
        let response = h
            .http
            .post(format!("{}{path}?from=test", h.base))
            .bearer_auth(&key)
            .header("origin", "https://app.example")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            response.headers()["access-control-allow-origin"],
            "https://app.example",
            "{path}"
        );
        assert_eq!(response.headers()["vary"], "origin", "{path}");
        assert!(
            response.headers().get("content-encoding").is_none(),
            "{path}: /v1 is never compressed"
        );
        let id = request_id(&response);
        assert!(id.starts_with("req_"), "{path}: {id}");
        if path == "/v1/messages" {
            assert_eq!(response.headers()["request-id"], id.as_str());
        }
        let record = h.record_eventually(&id).await;
        assert_eq!(record.status, 200, "{path}");
        ids.push(id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), relayed_routes().len(), "one id per request");
    h.shutdown().await;
}

#[tokio::test]
async fn other_methods_on_relayed_paths_still_get_the_routers_answers() {
    let h = Harness::start_with(Backend::Sqlite, |settings, _| {
        settings.cors_allowed_origins = vec!["*".into()];
    })
    .await;
    for (path, _) in relayed_routes() {
        let url = format!("{}{path}", h.base);
        for method in [reqwest::Method::GET, reqwest::Method::PUT] {
            let response = h.http.request(method, &url).send().await.unwrap();
            assert_eq!(response.status(), 405, "{path}");
            assert!(response.headers().contains_key("x-request-id"), "{path}");
            let error: Value = response.json().await.unwrap();
            assert_eq!(error["error"]["type"], "invalid_request_error", "{path}");
        }
        let preflight = h
            .http
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", "https://app.example")
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        assert_eq!(preflight.status(), 204, "{path}");
        assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    }
    h.shutdown().await;
}

#[tokio::test]
async fn bodies_the_fast_path_cannot_take_are_refused_in_each_surfaces_shape() {
    let h = Harness::start_with(Backend::Sqlite, |s, _| s.max_body_bytes = 1024).await;
    let (_, key) = h
        .user_with_key("limits", Nanos::from_usd(5), KeyOptions::default())
        .await;
    let big = "word ".repeat(1000);
    let post = |path: &str, key: Option<&str>, body: String| {
        let mut request = h
            .http
            .post(format!("{}{path}", h.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send()
    };
    // Declared too large: 413 in OpenAI's shape, before anything is relayed.
    let chat = json!({"model": "mock-gpt", "messages": user_says(&big)}).to_string();
    let refused = post("/v1/chat/completions", Some(&key), chat)
        .await
        .unwrap();
    assert_eq!(refused.status(), 413);
    assert!(refused.headers().contains_key("x-request-id"));
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("length limit"),
        "{error}"
    );
    // The Messages surface authenticates first: without a key the size is not told.
    let message = json!({"model": "mock-gpt", "max_tokens": 16,
        "messages": [{"role": "user", "content": big}]})
    .to_string();
    let anonymous = post("/v1/messages", None, message.clone()).await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let error: Value = anonymous.json().await.unwrap();
    assert_eq!(error["type"], "error", "Anthropic's shape: {error}");
    let too_large = post("/v1/messages", Some(&key), message).await.unwrap();
    assert_eq!(too_large.status(), 413);
    let error: Value = too_large.json().await.unwrap();
    assert_eq!(error["type"], "error", "Anthropic's shape: {error}");
    // A body that is not JSON: the relay's 400, with a request id.
    let broken = post("/v1/chat/completions", Some(&key), "{not json".into())
        .await
        .unwrap();
    assert_eq!(broken.status(), 400);
    assert!(broken.headers().contains_key("x-request-id"));
    assert!(h.mock.journal().is_empty(), "nothing reached the upstream");
    h.shutdown().await;
}
