//! What every client's default path relies on (#15): the cost in every answer, equal to
//! the usage record's; structured output on Claude; `cache_control` reaching an
//! Anthropic upstream; the input tokens in `message_start`; chunks without `usage`
//! unless asked for; CORS on `/v1`; Anthropic-shaped `/v1/models`; embeddings'
//! `encoding_format`.

use crate::harness::*;
use serde_json::{Value, json};
use tokenhub::accounts::KeyOptions;
use tokenhub::ledger::money::Nanos;

const CLAUDE: &str = "claude-sonnet-4";
const CLAUDE_UPSTREAM: &str = "claude-sonnet-4-6";

async fn start(backend: Backend) -> Harness {
    Harness::start_with(backend, |settings, mock_url| {
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
        .json(&body)
        .send()
        .await
        .expect("gateway answers")
}

#[tokio::test]
async fn every_answer_carries_its_recorded_cost_and_the_balance_after_it() {
    for backend in backends() {
        let h = start(backend).await;
        let (_, key) = h
            .user_with_key("payer", Nanos::from_usd(5), KeyOptions::default())
            .await;
        let mut balance = Nanos::from_usd(5);
        let ask = json!([{"role": "user", "content": "what does it cost"}]);

        // Chat, not streamed.
        let response = h
            .chat(&key, json!({"model": "mock-gpt", "messages": ask}))
            .await;
        assert_eq!(response.status(), 200);
        let (id, header) = (request_id(&response), cost_header(&response));
        let body: Value = response.json().await.unwrap();
        let record = h.record(&id).await;
        assert!(!record.cost.is_zero());
        balance -= record.cost;
        assert_charge(&body["usage"], header.as_deref(), record.cost, balance);
        assert_eq!(body["usage"]["prompt_tokens"], record.prompt_tokens);

        // Chat, streamed with usage: the usage chunk says it, the others say `usage: null`.
        let response = h
            .chat(
                &key,
                json!({"model": "mock-gpt", "messages": ask, "stream": true,
                       "stream_options": {"include_usage": true}}),
            )
            .await;
        let id = request_id(&response);
        assert!(cost_header(&response).is_none(), "no header on a stream");
        let data = sse_data(&response.text().await.unwrap());
        let chunks: Vec<Value> = data
            .iter()
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        let (last, rest) = chunks.split_last().unwrap();
        assert!(rest.iter().all(|c| c["usage"].is_null()), "{rest:?}");
        let record = h.record(&id).await;
        balance -= record.cost;
        assert_charge(&last["usage"], None, record.cost, balance);

        // Chat, streamed without usage: no chunk has a `usage` member at all, as OpenAI.
        let response = h
            .chat(
                &key,
                json!({"model": "mock-gpt", "messages": ask, "stream": true}),
            )
            .await;
        let id = request_id(&response);
        let text = response.text().await.unwrap();
        assert!(!text.contains("\"usage\""), "{text}");
        balance -= h.record(&id).await.cost;

        // `/v1/messages` to Claude, not streamed.
        let request = json!({"model": CLAUDE, "max_tokens": 50,
            "messages": [{"role": "user", "content": "cost please"}]});
        let response = messages(&h, &key, request.clone()).await;
        assert_eq!(response.status(), 200);
        let (id, header) = (request_id(&response), cost_header(&response));
        let body: Value = response.json().await.unwrap();
        assert!(
            !body["id"].as_str().unwrap().starts_with("msg_msg_"),
            "{body}"
        );
        let record = h.record(&id).await;
        balance -= record.cost;
        assert_charge(&body["usage"], header.as_deref(), record.cost, balance);

        // `/v1/messages` streamed: `message_delta` carries it.
        let mut request = request;
        request["stream"] = json!(true);
        let response = messages(&h, &key, request).await;
        let id = request_id(&response);
        let events = anthropic_events(&response.text().await.unwrap());
        let delta = events
            .iter()
            .find(|e| e["type"] == "message_delta")
            .expect("message_delta");
        let record = h.record(&id).await;
        balance -= record.cost;
        assert_charge(&delta["usage"], None, record.cost, balance);
        // `message_start` gives the prompt's tokens as counted before the answer.
        let start = &events[0];
        assert_eq!(start["type"], "message_start");
        let counted = start["message"]["usage"]["input_tokens"].as_u64().unwrap();
        assert!(
            counted > 0 && counted <= 2 * record.prompt_tokens,
            "{start}"
        );
        assert_eq!(delta["usage"]["input_tokens"], record.prompt_tokens);
        h.shutdown().await;
    }
}

/// The data of every event of an Anthropic SSE body.
fn anthropic_events(body: &str) -> Vec<Value> {
    body.split("\n\n")
        .filter_map(|event| event.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|data| serde_json::from_str(data).expect("JSON data"))
        .collect()
}

fn person_schema() -> Value {
    json!({"type": "object", "additionalProperties": false, "required": ["name", "age", "tags"],
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"},
                       "tags": {"type": "array", "items": {"type": "string"}}}})
}

/// A check of the schema's constraints this test uses: types, required, no extras.
fn validates(value: &Value, schema: &Value) -> bool {
    let typed = match schema["type"].as_str() {
        Some("object") => value.is_object(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("array") => value.is_array(),
        _ => true,
    };
    if !typed {
        return false;
    }
    if let (Some(object), Some(properties)) = (value.as_object(), schema["properties"].as_object())
    {
        let required = schema["required"].as_array().cloned().unwrap_or_default();
        if !required
            .iter()
            .all(|r| object.contains_key(r.as_str().unwrap()))
        {
            return false;
        }
        if schema["additionalProperties"] == json!(false)
            && !object.keys().all(|k| properties.contains_key(k))
        {
            return false;
        }
        return object
            .iter()
            .all(|(k, v)| properties.get(k).is_none_or(|s| validates(v, s)));
    }
    if let (Some(items), Some(schema)) = (value.as_array(), schema.get("items")) {
        return items.iter().all(|item| validates(item, schema));
    }
    true
}

#[tokio::test]
async fn json_schema_and_json_object_are_served_by_claude() {
    let h = start(Backend::Sqlite).await;
    let (_, key) = h
        .user_with_key("shaper", Nanos::from_usd(5), KeyOptions::default())
        .await;
    let ask = json!([{"role": "user", "content": "Ada, 36, likes maths"}]);
    let schema_format = json!({"type": "json_schema",
        "json_schema": {"name": "person", "strict": true, "schema": person_schema()}});
    for stream in [false, true] {
        for format in [schema_format.clone(), json!({"type": "json_object"})] {
            let request = json!({"model": CLAUDE, "messages": ask, "stream": stream,
                "response_format": format});
            let response = h.chat(&key, request).await;
            assert_eq!(response.status(), 200, "{format}");
            let (content, finish) = if stream {
                let data = sse_data(&response.text().await.unwrap());
                let finish = data
                    .iter()
                    .filter_map(|d| serde_json::from_str::<Value>(d).ok())
                    .find_map(|c| c["choices"][0]["finish_reason"].as_str().map(String::from));
                (streamed_text(&data), finish.unwrap_or_default())
            } else {
                let body: Value = response.json().await.unwrap();
                assert!(body["choices"][0]["message"].get("tool_calls").is_none());
                (
                    body["choices"][0]["message"]["content"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                    body["choices"][0]["finish_reason"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                )
            };
            let answer: Value = serde_json::from_str(&content).expect("the content is JSON");
            assert_eq!(finish, "stop");
            let upstream = &h
                .mock
                .journal()
                .last()
                .expect("upstream called")
                .body
                .clone();
            if format["type"] == "json_schema" {
                assert!(validates(&answer, &person_schema()), "{answer}");
                // Sonnet 4.6 has Anthropic's structured outputs: the native parameter.
                assert_eq!(
                    upstream["output_config"]["format"],
                    json!({"type": "json_schema", "schema": person_schema()})
                );
                assert!(upstream.get("tools").is_none(), "{upstream}");
            } else {
                assert!(answer.is_object(), "{answer}");
                assert_eq!(upstream["tool_choice"]["type"], "tool");
                assert_eq!(upstream["tools"][0]["name"], "json_answer");
            }
        }
    }
    h.shutdown().await;
}

/// A 1×1 PNG and a tiny PDF, base64.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
const PDF: &str =
    "JVBERi0xLjQKJcOkw7zDtsOfCjEgMCBvYmoKPDw+PgplbmRvYmoKdHJhaWxlcgo8PD4+CiUlRU9GCg==";

#[tokio::test]
async fn cache_control_reaches_anthropic_on_every_block_type_and_no_other_vendor() {
    let h = start(Backend::Sqlite).await;
    let (_, key) = h
        .user_with_key("cacher", Nanos::from_usd(5), KeyOptions::default())
        .await;
    let mark = json!({"type": "ephemeral"});
    let conversation = json!([
        {"role": "user", "content": [
            {"type": "text", "text": "look at these", "cache_control": mark},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}, "cache_control": mark},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}, "title": "spec.pdf", "cache_control": mark}]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "checking", "cache_control": mark},
            {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "x"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "found it", "cache_control": mark},
            {"type": "text", "text": "and now?"}]}
    ]);
    let request = |model: &str| {
        json!({"model": model, "max_tokens": 50,
            "system": [{"type": "text", "text": "rules"}, {"type": "text", "text": "long context", "cache_control": mark}],
            "tools": [{"name": "lookup", "input_schema": {"type": "object"}, "cache_control": mark}],
            "messages": conversation})
    };
    let response = messages(&h, &key, request(CLAUDE)).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let upstream = h.mock.journal().last().unwrap().body.clone();
    assert_eq!(
        upstream["system"],
        json!([{"type": "text", "text": "rules"},
               {"type": "text", "text": "long context", "cache_control": mark}])
    );
    assert_eq!(upstream["tools"][0]["cache_control"], mark);
    let first = &upstream["messages"][0]["content"];
    assert_eq!(
        first[0],
        json!({"type": "text", "text": "look at these", "cache_control": mark})
    );
    assert_eq!(first[1]["type"], "image");
    assert_eq!(first[1]["cache_control"], mark);
    assert_eq!(
        first[2],
        json!({"type": "document", "title": "spec.pdf", "cache_control": mark,
               "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}})
    );
    assert_eq!(upstream["messages"][1]["content"][0]["cache_control"], mark);
    let result = &upstream["messages"][2]["content"][0];
    assert_eq!(result["type"], "tool_result");
    assert_eq!(
        result["content"],
        json!([{"type": "text", "text": "found it", "cache_control": mark}])
    );

    // An OpenAI-dialect upstream gets no marker (it has no use for one).
    let mut plain = request("mock-gpt");
    plain["messages"] = json!([{"role": "user", "content": [
        {"type": "text", "text": "hello", "cache_control": mark}]}]);
    let response = messages(&h, &key, plain).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let upstream = h.mock.journal().last().unwrap().body.clone();
    assert!(
        !upstream.to_string().contains("cache_control"),
        "{upstream}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn browsers_may_call_v1_from_another_origin_but_never_api() {
    let h = start(Backend::Sqlite).await;
    let (_, key) = h
        .user_with_key("browser", Nanos::from_usd(5), KeyOptions::default())
        .await;
    let origin = "https://app.example";
    let preflight = h
        .http
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/v1/chat/completions", h.base),
        )
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type,x-stainless-os,anthropic-version",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204, "answered without a key");
    let headers = preflight.headers();
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert!(
        headers["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    let allowed = headers["access-control-allow-headers"].to_str().unwrap();
    for name in [
        "authorization",
        "content-type",
        "x-stainless-os",
        "anthropic-version",
    ] {
        assert!(allowed.contains(name), "{allowed}");
    }

    let response = h
        .http
        .post(format!("{}/v1/chat/completions", h.base))
        .header("origin", origin)
        .bearer_auth(&key)
        .json(&json!({"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    let exposed = response.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(exposed.contains("x-request-id") && exposed.contains("x-tokenhub-cost-usd"));

    // The cookie-authenticated management API gives a page from elsewhere nothing.
    for method in [reqwest::Method::OPTIONS, reqwest::Method::GET] {
        let response = h
            .http
            .request(method, format!("{}/api/me", h.base))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .send()
            .await
            .unwrap();
        assert!(
            response
                .headers()
                .get("access-control-allow-origin")
                .is_none()
        );
        assert_ne!(response.status(), 204);
    }
    h.shutdown().await;
}

#[tokio::test]
async fn embeddings_come_back_in_the_encoding_asked_for() {
    use base64::Engine;
    let h = start(Backend::Sqlite).await;
    let (_, key) = h
        .user_with_key("embedder", Nanos::from_usd(5), KeyOptions::default())
        .await;
    let embed = |format: Option<&str>| {
        let mut body = json!({"model": "mock-gpt", "input": "hello there"});
        if let Some(format) = format {
            body["encoding_format"] = json!(format);
        }
        let request = h
            .http
            .post(format!("{}/v1/embeddings", h.base))
            .bearer_auth(&key)
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    };
    let floats = embed(None).await["data"][0]["embedding"].clone();
    assert!(floats.is_array(), "{floats}");
    // The mock ignores `encoding_format`, as some upstreams do: the gateway encodes.
    let encoded = embed(Some("base64")).await;
    let text = encoded["data"][0]["embedding"].as_str().expect("base64");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap();
    let decoded: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let expected: Vec<f32> = floats
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(decoded, expected);
    assert!(encoded["usage"]["cost"].is_number(), "{encoded}");
    assert!(embed(Some("float")).await["data"][0]["embedding"].is_array());
    h.shutdown().await;
}

#[tokio::test]
async fn anthropic_clients_list_models_in_anthropic_shape() {
    let h = start(Backend::Sqlite).await;
    let (_, key) = h
        .user_with_key("lister", Nanos::from_usd(5), KeyOptions::default())
        .await;
    let get = |path: &str| {
        h.http
            .get(format!("{}{path}", h.base))
            .header("x-api-key", &key)
            .header("anthropic-version", "2023-06-01")
            .send()
    };
    let list: Value = get("/v1/models").await.unwrap().json().await.unwrap();
    let data = list["data"].as_array().unwrap();
    assert!(data.iter().any(|m| m["id"] == CLAUDE), "{list}");
    for model in data {
        assert_eq!(model["type"], "model");
        assert!(model["display_name"].is_string());
        assert!(
            model["created_at"].as_str().unwrap().ends_with('Z'),
            "{model}"
        );
    }
    assert_eq!(list["has_more"], false);
    assert_eq!(list["first_id"], data[0]["id"]);
    assert_eq!(list["last_id"], data[data.len() - 1]["id"]);
    let one: Value = get(&format!("/v1/models/{CLAUDE}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&one["type"], &one["id"]),
        (&json!("model"), &json!(CLAUDE))
    );
    // OpenAI clients keep OpenAI's shape.
    let openai: Value = h
        .http
        .get(format!("{}/v1/models", h.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(openai["object"], "list");
    h.shutdown().await;
}

#[tokio::test]
async fn responses_carry_the_recorded_cost_too() {
    let h = start(Backend::Sqlite).await;
    let (_, key) = h
        .user_with_key("responder", Nanos::from_usd(5), KeyOptions::default())
        .await;
    let mut balance = Nanos::from_usd(5);
    for stream in [false, true] {
        let response = h
            .http
            .post(format!("{}/v1/responses", h.base))
            .bearer_auth(&key)
            .json(&json!({"model": "mock-gpt", "input": "what does it cost", "stream": stream}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let (id, header) = (request_id(&response), cost_header(&response));
        let usage = if stream {
            let completed = sse_data(&response.text().await.unwrap())
                .iter()
                .filter_map(|d| serde_json::from_str::<Value>(d).ok())
                .find(|e| e["type"] == "response.completed")
                .expect("response.completed");
            completed["response"]["usage"].clone()
        } else {
            response.json::<Value>().await.unwrap()["usage"].clone()
        };
        let record = h.record(&id).await;
        balance -= record.cost;
        assert_charge(&usage, header.as_deref(), record.cost, balance);
    }
    h.shutdown().await;
}
