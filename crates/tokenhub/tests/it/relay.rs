//! The relay end to end: a real gateway in front of the mock upstream.

use crate::harness::*;
use mock_upstream::REPLY_PREFIX;
use serde_json::{Value, json};
use tokenhub::accounts::KeyOptions;
use tokenhub::ledger::money::Nanos;

#[tokio::test]
async fn non_stream_answer_passes_through_and_is_billed_exactly() {
    for backend in backends() {
        let h = Harness::start(backend).await;
        let (user, key) = h
            .user_with_key("ada", Nanos::from_usd(1), KeyOptions::default())
            .await;
        let request = json!({"model": "mock-gpt", "messages": user_says("Hello there")});
        let response = h.chat(&key, request.clone()).await;
        assert_eq!(response.status(), 200);
        let id = request_id(&response);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["object"], "chat.completion");
        assert_eq!(
            body["choices"][0]["message"]["content"],
            format!("{REPLY_PREFIX}Hello there")
        );
        assert_eq!(body["usage"]["prompt_tokens"], 5);
        assert_eq!(body["usage"]["completion_tokens"], 7);

        let record = h.record(&id).await;
        assert_eq!((record.prompt_tokens, record.completion_tokens), (5, 7));
        assert_eq!(record.cost, cost_of(5, 7));
        assert_eq!(
            (record.status, record.stream, record.estimated),
            (200, false, false)
        );
        assert_eq!(record.model, "mock-gpt");
        assert!(record.channel_id.is_some() && record.error.is_none());
        assert_eq!(
            h.stored_balance(user.id).await,
            Nanos::from_usd(1) - cost_of(5, 7)
        );
        assert_eq!(
            h.gateway().store.recomputed_balance(user.id).await.unwrap(),
            Nanos::from_usd(1) - cost_of(5, 7)
        );
        h.shutdown().await;
    }
}

#[tokio::test]
async fn stream_relays_every_event_and_hides_the_usage_chunk_it_injected() {
    for backend in backends() {
        let h = Harness::start(backend).await;
        let (_, key) = h
            .user_with_key("bo", Nanos::from_usd(1), KeyOptions::default())
            .await;
        let request = json!({"model": "mock-gpt", "stream": true, "messages": user_says("stream me please"), "mock": {"chunks": 5}});
        let response = h.chat(&key, request).await;
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        let id = request_id(&response);
        let body = response.text().await.unwrap();
        let data = sse_data(&body);
        assert_eq!(
            streamed_text(&data),
            format!("{REPLY_PREFIX}stream me please")
        );
        assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
        assert!(body.ends_with("data: [DONE]\n\n"));
        let chunks: Vec<Value> = data
            .iter()
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        assert!(
            chunks
                .iter()
                .all(|c| !c["choices"].as_array().unwrap().is_empty()),
            "no usage-only chunk reaches a client that did not ask"
        );

        // The upstream was asked for usage even though the client was not.
        let upstream = h.mock.journal().last().unwrap().body.clone();
        assert_eq!(upstream["stream_options"]["include_usage"], true);

        let record = h.record(&id).await;
        let prompt = 3 + 3;
        let completion = 8;
        assert_eq!(
            (record.prompt_tokens, record.completion_tokens),
            (prompt, completion)
        );
        assert_eq!(record.cost, cost_of(prompt, completion));
        assert!(record.stream && !record.estimated);
        assert!(record.ttft_ms.is_some());
        h.shutdown().await;
    }
}

#[tokio::test]
async fn stream_carries_usage_when_the_client_asks_even_if_upstream_puts_it_in_the_choice() {
    let h = Harness::start(Backend::Sqlite).await;
    let (_, key) = h
        .user_with_key("cy", Nanos::from_usd(1), KeyOptions::default())
        .await;
    for knobs in [json!({}), json!({"usage_in_choice": true})] {
        let request = json!({"model": "mock-gpt", "stream": true, "stream_options": {"include_usage": true},
            "messages": user_says("count me"), "mock": knobs});
        let body = h.chat(&key, request).await.text().await.unwrap();
        let data = sse_data(&body);
        let usage_chunks: Vec<Value> = data
            .iter()
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str::<Value>(d).unwrap())
            .filter(|c| c["choices"].as_array().is_some_and(Vec::is_empty))
            .collect();
        assert_eq!(
            usage_chunks.len(),
            1,
            "exactly one usage chunk for {knobs}: {body}"
        );
        assert_eq!(usage_chunks[0]["usage"]["prompt_tokens"], 5);
        assert_eq!(usage_chunks[0]["usage"]["completion_tokens"], 7);
        let before_done: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
        assert_eq!(
            before_done, usage_chunks[0],
            "the usage chunk comes right before [DONE]"
        );
    }
    h.shutdown().await;
}

#[tokio::test]
async fn usage_is_estimated_and_marked_when_the_upstream_reports_none() {
    let h = Harness::start(Backend::Sqlite).await;
    let (_, key) = h
        .user_with_key("di", Nanos::from_usd(1), KeyOptions::default())
        .await;
    for stream in [false, true] {
        let request = json!({"model": "mock-gpt", "stream": stream, "messages": user_says("no usage here"), "mock": {"usage": false}});
        let response = h.chat(&key, request).await;
        let id = request_id(&response);
        let _ = response.text().await.unwrap();
        let record = h.record(&id).await;
        assert!(record.estimated, "stream={stream}");
        assert!(
            record.prompt_tokens > 0 && record.completion_tokens > 0,
            "{record:?}"
        );
        assert_eq!(
            record.cost,
            cost_of(record.prompt_tokens, record.completion_tokens)
        );
    }
    h.shutdown().await;
}

#[tokio::test]
async fn model_is_mapped_and_every_other_field_reaches_upstream_verbatim() {
    let h = Harness::start(Backend::Sqlite).await;
    let (_, key) = h
        .user_with_key("ed", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let request = json!({"model": "alias-model", "messages": user_says("hi"), "temperature": 0.25,
        "x_vendor": {"nested": [1, "two", null]}, "stream_options": null});
    let response = h.chat(&key, request).await;
    assert_eq!(response.status(), 200);
    let id = request_id(&response);
    let upstream = h.mock.journal().last().unwrap().clone();
    assert_eq!(upstream.body["model"], "mock-gpt");
    assert_eq!(upstream.body["temperature"], 0.25);
    assert_eq!(
        upstream.body["x_vendor"],
        json!({"nested": [1, "two", null]})
    );
    assert_eq!(
        upstream.header("authorization"),
        Some("Bearer mock-upstream-key")
    );
    // Exactly one Host, naming the mock's address and port.
    let mock_authority = h.mock.base_url().split("://").nth(1).unwrap().to_owned();
    assert_eq!(upstream.header("host"), Some(mock_authority.as_str()));
    assert!(
        upstream
            .body
            .get("stream_options")
            .is_some_and(Value::is_null),
        "a non-stream request is not given stream_options"
    );
    // Billing uses the public model's price and records the public name.
    assert_eq!(h.record(&id).await.model, "alias-model");
    h.shutdown().await;
}

async fn error_of(response: reqwest::Response) -> (u16, String, Value) {
    let status = response.status().as_u16();
    let id = request_id(&response);
    let body: Value = response.json().await.expect("error bodies are JSON");
    let error = body["error"].clone();
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(
        error.get("type").is_some() && error.get("param").is_some() && error.get("code").is_some(),
        "{body}"
    );
    (status, id, error)
}

#[tokio::test]
async fn every_bad_input_gets_an_openai_error_and_a_request_id() {
    let h = Harness::start(Backend::Sqlite).await;
    let (_, key) = h
        .user_with_key("fi", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let (_, narrow) = h
        .user_with_key(
            "gu",
            Nanos::from_usd(1),
            KeyOptions {
                allowed_models: Some(vec!["mock-free".into()]),
                ..Default::default()
            },
        )
        .await;
    let url = format!("{}/v1/chat/completions", h.base);
    let ok_body = json!({"model": "mock-gpt", "messages": user_says("x")});

    let (status, _, error) = error_of(h.http.post(&url).json(&ok_body).send().await.unwrap()).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (401, Some("invalid_api_key"))
    );
    let (status, _, error) = error_of(h.chat("sk-wrong", ok_body.clone()).await).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (401, Some("invalid_api_key"))
    );
    assert!(
        !error["message"].as_str().unwrap().contains("sk-wrong"),
        "a presented key is never echoed whole"
    );

    let (status, id, error) = error_of(
        h.chat(&key, json!({"model": "nope", "messages": user_says("x")}))
            .await,
    )
    .await;
    assert_eq!(
        (status, error["code"].as_str(), error["param"].as_str()),
        (404, Some("model_not_found"), Some("model"))
    );
    assert_eq!(
        h.record(&id).await.status,
        404,
        "refused requests leave a record too"
    );
    let (status, _, error) = error_of(h.chat(&narrow, ok_body.clone()).await).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (404, Some("model_not_found")),
        "a model outside the key's allow list"
    );

    let raw = |body: &'static str| h.http.post(&url).bearer_auth(&key).body(body).send();
    let (status, _, error) = error_of(raw("{not json").await.unwrap()).await;
    assert_eq!(
        (status, error["type"].as_str()),
        (400, Some("invalid_request_error"))
    );
    let (status, _, error) = error_of(raw(r#"{"model":"mock-gpt"}"#).await.unwrap()).await;
    assert_eq!((status, error["param"].as_str()), (400, Some("messages")));
    let (status, _, error) = error_of(raw(r#"{"messages":[]}"#).await.unwrap()).await;
    assert_eq!((status, error["param"].as_str()), (400, Some("model")));
    let (status, _, error) = error_of(
        raw(r#"{"model":"mock-gpt","messages":[],"stream":"yes"}"#)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, error["param"].as_str()), (400, Some("stream")));

    let (status, _, _) = error_of(h.http.get(&url).send().await.unwrap()).await;
    assert_eq!(status, 405);
    let (status, _, _) = error_of(
        h.http
            .get(format!("{}/v1/nothing-here", h.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    h.shutdown().await;
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let h = Harness::start_with(Backend::Sqlite, |s, _| s.max_body_bytes = 1024).await;
    let (_, key) = h
        .user_with_key("ha", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let big = "word ".repeat(1000);
    let (status, _, error) = error_of(
        h.chat(
            &key,
            json!({"model": "mock-gpt", "messages": user_says(&big)}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, error["type"].as_str()),
        (413, Some("invalid_request_error"))
    );
    h.shutdown().await;
}

#[tokio::test]
async fn upstream_errors_keep_their_message_and_client_errors_are_not_retried() {
    let h = Harness::start_with(Backend::Sqlite, |settings, mock| {
        settings
            .channels
            .push(channel("second", mock, &["mock-gpt"], -1));
    })
    .await;
    let (_, key) = h
        .user_with_key("io", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let before = h.mock.journal().len();
    let request =
        json!({"model": "mock-gpt", "messages": user_says("x"), "mock": {"fail_status": 400}});
    let (status, id, error) = error_of(h.chat(&key, request).await).await;
    assert_eq!(status, 400);
    assert_eq!(error["message"], "mock failure 400");
    assert_eq!(
        h.mock.journal().len() - before,
        1,
        "a 400 would fail on any channel: tried once"
    );
    let record = h.record(&id).await;
    assert_eq!((record.status, record.cost), (400, Nanos::ZERO));
    assert!(
        record
            .error
            .as_deref()
            .is_some_and(|e| e.contains("mock failure 400"))
    );

    let request =
        json!({"model": "mock-gpt", "messages": user_says("x"), "mock": {"fail_status": 500}});
    let (status, _, error) = error_of(h.chat(&key, request).await).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (502, Some("upstream_error"))
    );
    assert!(
        !error["message"]
            .as_str()
            .unwrap()
            .contains("mock-upstream-key"),
        "never an upstream key"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_failing_channel_is_replaced_before_the_first_byte() {
    let h = Harness::start_with(Backend::Sqlite, |settings, mock| {
        // Highest priority: nothing listens there.
        settings
            .channels
            .push(channel("dead", "http://127.0.0.1:9", &["mock-gpt"], 10));
        settings
            .channels
            .push(channel("second", mock, &["mock-gpt"], 5));
    })
    .await;
    let (_, key) = h
        .user_with_key("jo", Nanos::from_usd(1), KeyOptions::default())
        .await;
    for stream in [false, true] {
        // The first live attempt fails with a 500 once; the next channel answers.
        let knobs =
            json!({"fail_status": 500, "fail_times": 1, "fail_key": format!("failover-{stream}")});
        let request = json!({"model": "mock-gpt", "stream": stream, "messages": user_says("again"), "mock": knobs});
        let response = h.chat(&key, request).await;
        assert_eq!(response.status(), 200, "stream={stream}");
        let id = request_id(&response);
        let text = response.text().await.unwrap();
        assert!(text.contains("again"), "{text}");
        let record = h.record(&id).await;
        assert_eq!(
            (record.status, record.cost),
            (200, cost_of(4, 6)),
            "stream={stream}"
        );
    }
    h.shutdown().await;
}

#[tokio::test]
async fn unreachable_and_silent_upstreams_give_502_and_504() {
    let h = Harness::start_with(Backend::Sqlite, |settings, _| {
        settings.upstream_first_byte_timeout_ms = 300;
        settings
            .channels
            .push(channel("dead", "http://127.0.0.1:9", &["dead-model"], 0));
        settings.models.push(model("dead-model", "1", "1"));
    })
    .await;
    let (user, key) = h
        .user_with_key("ka", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let (status, _, error) = error_of(
        h.chat(
            &key,
            json!({"model": "dead-model", "messages": user_says("x")}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 502);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("cannot reach upstream"),
        "{error}"
    );
    for stream in [false, true] {
        let request = json!({"model": "mock-gpt", "stream": stream, "messages": user_says("x"), "mock": {"hang": true}});
        let (status, _, error) = error_of(h.chat(&key, request).await).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (504, Some("upstream_timeout")),
            "stream={stream}"
        );
    }
    assert_eq!(
        h.stored_balance(user.id).await,
        Nanos::from_usd(1),
        "failures cost nothing"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_stream_that_breaks_ends_with_an_error_event_and_bills_what_was_generated() {
    let h = Harness::start(Backend::Sqlite).await;
    let (_, key) = h
        .user_with_key("lu", Nanos::from_usd(1), KeyOptions::default())
        .await;
    for knobs in [
        json!({"drop_after_chunks": 2, "chunks": 4}),
        json!({"mid_stream_error": true}),
    ] {
        let request = json!({"model": "mock-gpt", "stream": true, "messages": user_says("one two three four"), "mock": knobs});
        let response = h.chat(&key, request).await;
        assert_eq!(response.status(), 200);
        let id = request_id(&response);
        let body = response.text().await.unwrap();
        let data = sse_data(&body);
        assert!(
            !data.iter().any(|d| d == "[DONE]"),
            "a broken answer does not look finished: {body}"
        );
        let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
        assert!(last["error"]["message"].is_string(), "{body}");
        let record = h.record(&id).await;
        assert!(record.error.is_some(), "{record:?}");
        assert!(
            record.estimated && record.completion_tokens > 0,
            "{record:?}"
        );
        assert_eq!(
            record.cost,
            cost_of(record.prompt_tokens, record.completion_tokens)
        );
    }
    h.shutdown().await;
}

#[tokio::test]
async fn a_client_that_disconnects_mid_stream_is_billed_for_what_it_received() {
    let h = Harness::start(Backend::Sqlite).await;
    let (_, key) = h
        .user_with_key("ma", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let request = json!({"model": "mock-gpt", "stream": true, "messages": user_says("a b c d e f g h"),
        "mock": {"chunks": 12, "chunk_delay_ms": 100}});
    let mut response = h.chat(&key, request).await;
    let id = request_id(&response);
    let first = response.chunk().await.unwrap().unwrap();
    assert!(!first.is_empty());
    drop(response);
    let record = h.record_eventually(&id).await;
    assert_eq!(record.status, 499);
    assert!(record.estimated);
    assert!(
        record.completion_tokens < 16,
        "billed only for what was generated: {record:?}"
    );
    assert_eq!(
        record.cost,
        cost_of(record.prompt_tokens, record.completion_tokens)
    );
    h.shutdown().await;
}

#[tokio::test]
async fn concurrent_requests_never_overspend_a_small_balance() {
    for backend in backends() {
        let h = Harness::start_with(backend, |settings, _| {
            settings.default_output_reserve_tokens = 20
        })
        .await;
        // Each request reserves ~ (body/3)·1000 + 20·2000 nano ≈ 0.00009 USD and costs 5·1000 + 7·2000 = 19,000.
        let opening = Nanos(500_000);
        let (user, key) = h.user_with_key("na", opening, KeyOptions::default()).await;
        let request = json!({"model": "mock-gpt", "messages": user_says("Hello there"), "mock": {"ttfb_ms": 50}});
        let calls = (0..40).map(|_| h.chat(&key, request.clone()));
        let responses = futures_util::future::join_all(calls).await;
        let ok = responses.iter().filter(|r| r.status() == 200).count();
        let refused = responses.iter().filter(|r| r.status() == 429).count();
        assert_eq!(ok + refused, 40);
        assert!(ok >= 1 && refused >= 1, "ok={ok} refused={refused}");
        for response in responses.into_iter().filter(|r| r.status() == 429) {
            let (_, _, error) = error_of(response).await;
            assert_eq!(error["code"], "insufficient_quota");
        }
        let spent = cost_of(5, 7).0 * ok as i64;
        let balance = h.stored_balance(user.id).await;
        assert_eq!(
            balance,
            Nanos(opening.0 - spent),
            "balance = opening − Σ costs, exactly"
        );
        assert!(
            balance >= Nanos::ZERO,
            "reservations cover actual costs, so no overdraft: {balance}"
        );
        assert_eq!(
            h.gateway().store.recomputed_balance(user.id).await.unwrap(),
            balance
        );
        assert_eq!(
            h.gateway().store.total_usage_cost().await.unwrap(),
            Nanos(spent)
        );
        h.shutdown().await;
    }
}

#[tokio::test]
async fn key_quota_and_free_models() {
    let h = Harness::start(Backend::Sqlite).await;
    // Each call reserves ~38,000 nano (prompt estimated from the body, 7 output tokens) and
    // costs 19,000: the first fits in 50,000, the second no longer does.
    let options = KeyOptions {
        quota: Some(Nanos(50_000)),
        ..Default::default()
    };
    let (_, key) = h.user_with_key("ob", Nanos::from_usd(1), options).await;
    let request =
        json!({"model": "mock-gpt", "messages": user_says("Hello there"), "max_tokens": 7});
    assert_eq!(h.chat(&key, request.clone()).await.status(), 200);
    let (status, _, error) = error_of(h.chat(&key, request).await).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (429, Some("insufficient_quota"))
    );
    assert!(error["message"].as_str().unwrap().contains("quota"));

    let (broke, broke_key) = h
        .user_with_key("pa", Nanos::ZERO, KeyOptions::default())
        .await;
    let (status, _, _) = error_of(
        h.chat(
            &broke_key,
            json!({"model": "mock-gpt", "messages": user_says("x")}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 429);
    let free = h
        .chat(
            &broke_key,
            json!({"model": "mock-free", "messages": user_says("x")}),
        )
        .await;
    assert_eq!(free.status(), 200, "free models need no balance");
    let id = request_id(&free);
    assert_eq!(h.record(&id).await.cost, Nanos::ZERO);
    assert_eq!(h.stored_balance(broke.id).await, Nanos::ZERO);
    h.shutdown().await;
}

#[tokio::test]
async fn revoked_disabled_and_expired_keys_stop_working_without_restart() {
    let h = Harness::start(Backend::Sqlite).await;
    let (user, key) = h
        .user_with_key("qi", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let request = json!({"model": "mock-gpt", "messages": user_says("x")});
    assert_eq!(h.chat(&key, request.clone()).await.status(), 200);
    let store = &h.gateway().store;
    let key_id = store.keys_of_user(user.id).await.unwrap()[0].id;
    store.set_key_status(key_id, "revoked").await.unwrap();
    // The polling reloader (50 ms) picks the change up; no explicit reload here.
    let mut status = 200;
    for _ in 0..50 {
        status = h.chat(&key, request.clone()).await.status().as_u16();
        if status == 401 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(status, 401);

    let expiring = KeyOptions {
        expires_at: Some(tokenhub::store::now_ms() + 300),
        ..Default::default()
    };
    let (_, key) = h.user_with_key("ra", Nanos::from_usd(1), expiring).await;
    assert_eq!(h.chat(&key, request.clone()).await.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let (status, _, error) = error_of(h.chat(&key, request).await).await;
    assert_eq!(status, 401);
    assert!(error["message"].as_str().unwrap().contains("expired"));
    h.shutdown().await;
}

#[tokio::test]
async fn models_endpoint_lists_what_the_key_may_use() {
    let h = Harness::start(Backend::Sqlite).await;
    let (_, all) = h
        .user_with_key("sa", Nanos::ZERO, KeyOptions::default())
        .await;
    let narrow = KeyOptions {
        allowed_models: Some(vec!["mock-gpt".into(), "deepseek-chat".into()]),
        ..Default::default()
    };
    let (_, narrow) = h.user_with_key("ti", Nanos::ZERO, narrow).await;
    let list = |key: String| {
        let http = h.http.clone();
        let url = format!("{}/v1/models", h.base);
        async move {
            http.get(url)
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let ids = |body: &Value| {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let everything = list(all.clone()).await;
    assert_eq!(everything["object"], "list");
    assert_eq!(
        ids(&everything),
        ["alias-model", "mock-free", "mock-gpt", "tokenhub-demo"],
        "routable models only"
    );
    assert_eq!(everything["data"][2]["owned_by"], "Mock");
    assert_eq!(ids(&list(narrow.clone()).await), ["mock-gpt"]);
    let one = h
        .http
        .get(format!("{}/v1/models/mock-gpt", h.base))
        .bearer_auth(&all)
        .send()
        .await
        .unwrap();
    assert_eq!(one.json::<Value>().await.unwrap()["id"], "mock-gpt");
    let hidden = h
        .http
        .get(format!("{}/v1/models/mock-free", h.base))
        .bearer_auth(&narrow)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(hidden).await.0, 404);
    let anonymous = h
        .http
        .get(format!("{}/v1/models", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(anonymous).await.0, 401);
    h.shutdown().await;
}

#[tokio::test]
async fn a_preset_without_its_key_explains_what_to_set() {
    let h = Harness::start(Backend::Sqlite).await;
    let (_, key) = h
        .user_with_key("uv", Nanos::from_usd(1), KeyOptions::default())
        .await;
    // SAFETY of the assumption: CI never sets real provider keys.
    assert!(std::env::var("MOONSHOT_API_KEY").is_err());
    let (status, _, error) = error_of(
        h.chat(
            &key,
            json!({"model": "kimi-k2.5", "messages": user_says("x")}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (503, Some("model_not_available"))
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("MOONSHOT_API_KEY"),
        "{error}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn the_demo_model_works_offline() {
    let h = Harness::start(Backend::Sqlite).await;
    let (_, key) = h
        .user_with_key("wu", Nanos::ZERO, KeyOptions::default())
        .await;
    let expected = tokenhub::providers::demo::reply_to("Hello!");
    let body: Value = h
        .chat(
            &key,
            json!({"model": "tokenhub-demo", "messages": user_says("Hello!")}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], expected.as_str());
    let response = h
        .chat(&key, json!({"model": "tokenhub-demo", "stream": true, "stream_options": {"include_usage": true}, "messages": user_says("Hello!")}))
        .await;
    let id = request_id(&response);
    let data = sse_data(&response.text().await.unwrap());
    assert_eq!(streamed_text(&data), expected);
    assert!(data.len() > 5, "the demo streams in several chunks");
    let record = h.record(&id).await;
    assert!(
        record.prompt_tokens > 0 && record.completion_tokens > 20 && record.cost == Nanos::ZERO
    );
    h.shutdown().await;
}

#[tokio::test]
async fn graceful_shutdown_finishes_streams_and_flushes_every_record() {
    let mut h = Harness::start(Backend::Sqlite).await;
    let (user, key) = h
        .user_with_key("xi", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let request = json!({"model": "mock-gpt", "stream": true, "messages": user_says("slow words here"),
        "mock": {"chunks": 6, "chunk_delay_ms": 80}});
    let response = h.chat(&key, request).await;
    let id = request_id(&response);
    let gateway = h.gateway.take().unwrap();
    let shutdown = tokio::spawn(gateway.shutdown());
    let body = response.text().await.unwrap();
    assert!(
        body.ends_with("data: [DONE]\n\n"),
        "the in-flight stream completed: {body}"
    );
    shutdown.await.unwrap().unwrap();
    // Shutdown closed the store; reopen the same database to audit what it left.
    let store = tokenhub::store::Store::connect(&h.database_url, h.secret_key.as_ref())
        .await
        .unwrap();
    let record = store
        .usage_by_request_id(&id)
        .await
        .unwrap()
        .expect("the record was flushed before exit");
    assert_eq!((record.status, record.cost), (200, cost_of(6, 8)));
    assert_eq!(
        store.user_by_id(user.id).await.unwrap().unwrap().balance,
        Nanos::from_usd(1) - cost_of(6, 8)
    );
}

#[tokio::test]
async fn overhead_is_reported_per_response_and_in_metrics() {
    let h = Harness::start(Backend::Sqlite).await;
    let (_, key) = h
        .user_with_key("ov", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let response = h
        .chat(
            &key,
            json!({"model": "mock-gpt", "messages": user_says("hi")}),
        )
        .await;
    let overhead: u64 = response.headers()["x-tokenhub-overhead-us"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(overhead < 1_000_000, "{overhead} µs");
    let stream = h
        .chat(
            &key,
            json!({"model": "mock-gpt", "stream": true, "messages": user_says("hi")}),
        )
        .await;
    let _ = stream.text().await.unwrap();
    let metrics = h
        .http
        .get(format!("{}/metrics", h.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "tokenhub_requests_total",
        "tokenhub_gateway_overhead_seconds",
        "tokenhub_requests_in_flight",
        "tokenhub_streams_open",
        "tokenhub_tokens_total",
        "tokenhub_cost_nano_usd_total",
        "tokenhub_time_to_first_token_seconds",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    h.shutdown().await;
}
