//! Vendor quirks, each against the mock speaking that vendor's dialect: a request that
//! works against OpenAI works against every model in the catalogue.

use crate::harness::*;
use serde_json::{Value, json};
use tokenhub::accounts::KeyOptions;
use tokenhub::ledger::money::Nanos;

/// A gateway whose `vendor-model` is served by a channel of `kind` (and a second one of the
/// same kind, so retry decisions are visible), mapped upstream to `upstream_model`.
async fn vendor(kind: &str, upstream_model: &str) -> Harness {
    let (kind, upstream_model) = (kind.to_string(), upstream_model.to_string());
    Harness::start_with(Backend::Sqlite, move |settings, mock| {
        for (name, priority) in [("vendor-a", 10), ("vendor-b", 0)] {
            let mut vendor = channel(name, mock, &["vendor-model"], priority);
            vendor.kind = kind.clone();
            vendor
                .model_map
                .insert("vendor-model".into(), upstream_model.clone());
            settings.channels.push(vendor);
        }
        let mut priced = model("vendor-model", "1", "2");
        priced.cached_input_usd_per_mtok = Some("0.5".into());
        settings.models.push(priced);
    })
    .await
}

fn upstream_body(h: &Harness) -> Value {
    h.mock.journal().last().unwrap().body.clone()
}

#[tokio::test]
async fn deepseek_reasoning_passes_both_ways_and_cache_hits_are_priced_as_cached() {
    let h = vendor("deepseek", "deepseek-v4-pro").await;
    let (_, key) = h
        .user_with_key("ds", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let messages = json!([
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok", "reasoning_content": "thought about it",
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "done"},
        {"role": "user", "content": "second turn"}
    ]);
    let request = json!({"model": "vendor-model", "messages": messages, "stream": true,
        "mock": {"reasoning": "let me think", "usage_style": "deepseek", "cached_tokens": 4}});
    let response = h.chat(&key, request).await;
    let id = request_id(&response);
    let data = sse_data(&response.text().await.unwrap());
    assert!(
        data.iter()
            .any(|d| d.contains(r#""reasoning_content":"let me think""#)),
        "reasoning reaches the client"
    );
    let sent = upstream_body(&h);
    assert_eq!(sent["model"], "deepseek-v4-pro");
    assert_eq!(
        sent["messages"][1]["reasoning_content"], "thought about it",
        "replayed reasoning reaches DeepSeek"
    );
    let record = h.record(&id).await;
    assert_eq!(record.cached_tokens, 4);
    let uncached = record.prompt_tokens - 4;
    let expected = uncached as i64 * 1000 + 4 * 500 + record.completion_tokens as i64 * 2000;
    assert_eq!(
        record.cost,
        Nanos(expected),
        "cache hits at the cached price"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn moonshot_fixed_sampling_models_are_not_sent_a_temperature() {
    let h = vendor("moonshot", "kimi-k2.5").await;
    let (_, key) = h
        .user_with_key("ms", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let request = json!({"model": "vendor-model", "messages": user_says("hi"), "temperature": 0.2, "top_p": 0.5, "seed": 7});
    assert_eq!(h.chat(&key, request).await.status(), 200);
    let sent = upstream_body(&h);
    assert!(
        sent.get("temperature").is_none() && sent.get("top_p").is_none(),
        "{sent}"
    );
    assert_eq!(sent["seed"], 7, "other sampling fields pass");
    h.shutdown().await;
}

#[tokio::test]
async fn qwen_non_streaming_calls_do_not_trip_over_thinking() {
    let h = vendor("qwen", "qwen-plus").await;
    let (_, key) = h
        .user_with_key("qw", Nanos::from_usd(1), KeyOptions::default())
        .await;
    assert_eq!(
        h.chat(
            &key,
            json!({"model": "vendor-model", "messages": user_says("hi")})
        )
        .await
        .status(),
        200
    );
    assert_eq!(upstream_body(&h)["enable_thinking"], false);
    let streamed = h
        .chat(
            &key,
            json!({"model": "vendor-model", "stream": true, "messages": user_says("hi")}),
        )
        .await;
    let _ = streamed.text().await;
    assert!(
        upstream_body(&h).get("enable_thinking").is_none(),
        "streams may think"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn developer_messages_reach_vendors_as_system() {
    let h = vendor("doubao", "doubao-seed-2-0-pro-260215").await;
    let (_, key) = h
        .user_with_key("db", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let messages =
        json!([{"role": "developer", "content": "be brief"}, {"role": "user", "content": "hi"}]);
    assert_eq!(
        h.chat(&key, json!({"model": "vendor-model", "messages": messages}))
            .await
            .status(),
        200
    );
    let sent = upstream_body(&h);
    assert_eq!(sent["model"], "doubao-seed-2-0-pro-260215");
    assert_eq!(sent["messages"][0]["role"], "system");
    h.shutdown().await;
}

#[tokio::test]
async fn zhipu_business_codes_decide_what_the_client_sees_and_what_is_retried() {
    let h = vendor("zhipu", "glm-5").await;
    let (_, key) = h
        .user_with_key("zp", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let before = h.mock.journal().len();
    let unsafe_content = json!({"fail_status": 400, "fail_body": {"error": {"code": "1301", "message": "unsafe content"}}});
    let response = h
        .chat(
            &key,
            json!({"model": "vendor-model", "messages": user_says("x"), "mock": unsafe_content}),
        )
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["message"], "unsafe content");
    assert_eq!(
        h.mock.journal().len() - before,
        1,
        "content refusals are not retried"
    );

    // 1113 (account in arrears) arrives as a 429 but is the channel's problem: try the next.
    let arrears = json!({"fail_status": 429, "fail_times": 1, "fail_key": "arrears",
        "fail_body": {"error": {"code": "1113", "message": "arrears"}}});
    let response = h
        .chat(
            &key,
            json!({"model": "vendor-model", "messages": user_says("x"), "mock": arrears}),
        )
        .await;
    assert_eq!(response.status(), 200);
    h.shutdown().await;
}

#[tokio::test]
async fn zhipu_finish_reasons_are_mapped_and_network_errors_are_failures() {
    let h = vendor("zhipu", "glm-5").await;
    let (_, key) = h
        .user_with_key("zf", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let sensitive = json!({"model": "vendor-model", "messages": user_says("x"), "mock": {"finish_reason": "sensitive"}});
    let body: Value = h.chat(&key, sensitive.clone()).await.json().await.unwrap();
    assert_eq!(body["choices"][0]["finish_reason"], "content_filter");
    let mut streamed = sensitive;
    streamed["stream"] = json!(true);
    let text = h.chat(&key, streamed).await.text().await.unwrap();
    assert!(
        text.contains(r#""finish_reason":"content_filter""#) && text.ends_with("data: [DONE]\n\n"),
        "{text}"
    );

    let network = json!({"model": "vendor-model", "messages": user_says("x"), "mock": {"finish_reason": "network_error"}});
    let response = h.chat(&key, network.clone()).await;
    assert_eq!(
        response.status(),
        502,
        "a network_error 'finish' is a failure, retried then reported"
    );
    let mut streamed = network;
    streamed["stream"] = json!(true);
    let response = h.chat(&key, streamed).await;
    let id = request_id(&response);
    let text = response.text().await.unwrap();
    let last: Value = serde_json::from_str(sse_data(&text).last().unwrap()).unwrap();
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("network error"),
        "{text}"
    );
    assert!(!text.contains("[DONE]"));
    assert!(h.record(&id).await.error.is_some());
    h.shutdown().await;
}

/// Issue 19, finding 4: kimi-k2.5/k2.6 fix `n` and both penalties as well as their
/// sampling (the strict mock refuses any other value); kimi-k2-thinking takes a
/// temperature, which must reach it.
#[tokio::test]
async fn moonshot_fixed_parameters_are_all_removed_and_k2_thinking_keeps_its_temperature() {
    let h = vendor("moonshot", "kimi-k2.6").await;
    let (_, key) = h
        .user_with_key("k2", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let request = json!({"model": "vendor-model", "messages": user_says("hi"), "n": 1,
        "presence_penalty": 0.4, "frequency_penalty": 0.3, "temperature": 0.2, "seed": 3});
    let response = h.chat(&key, request.clone()).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let sent = upstream_body(&h);
    for fixed in ["n", "presence_penalty", "frequency_penalty", "temperature"] {
        assert!(sent.get(fixed).is_none(), "{fixed}: {sent}");
    }
    assert_eq!(sent["seed"], 3);
    h.shutdown().await;

    let h = vendor("moonshot", "kimi-k2-thinking").await;
    let (_, key) = h
        .user_with_key("k2t", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let request = json!({"model": "vendor-model", "messages": user_says("hi"), "temperature": 0.7});
    assert_eq!(h.chat(&key, request).await.status(), 200);
    assert_eq!(upstream_body(&h)["temperature"], 0.7);
    h.shutdown().await;
}

/// Issue 19, finding 6: Zhipu's 1312 is "model overloaded, try later": the next channel
/// is tried, and when every channel is overloaded the client gets a 503, not a payment
/// error.
#[tokio::test]
async fn zhipu_1312_is_an_overload_retried_elsewhere_not_an_empty_account() {
    let h = vendor("zhipu", "glm-5").await;
    let (_, key) = h
        .user_with_key("zo", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let overloaded = |times: Option<u32>| {
        let mut knob = json!({"fail_status": 429, "fail_key": format!("o{times:?}"),
            "fail_body": {"error": {"code": "1312", "message": "该模型当前访问量过大，请您稍后再试"}}});
        if let Some(times) = times {
            knob["fail_times"] = json!(times);
        }
        json!({"model": "vendor-model", "messages": user_says("x"), "mock": knob})
    };
    let before = h.mock.journal().len();
    assert_eq!(h.chat(&key, overloaded(Some(1))).await.status(), 200);
    assert_eq!(
        h.mock.journal().len() - before,
        2,
        "the second channel served it"
    );
    let response = h.chat(&key, overloaded(None)).await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("稍后再试"),
        "{body}"
    );
    h.shutdown().await;
}

/// Issue 19, finding 6: DeepSeek's FIM (`/beta/completions` with `suffix`) and chat
/// prefix completion (`/beta/chat/completions` with `prefix: true`) are reached through
/// a DeepSeek channel whose base URL is `…/beta`, with their members intact.
#[tokio::test]
async fn deepseek_beta_features_are_reached_through_a_beta_channel() {
    let h = Harness::start_with(Backend::Sqlite, |settings, mock_url| {
        let mut beta = channel(
            "deepseek-beta",
            &format!("{mock_url}/beta"),
            &["ds-beta"],
            0,
        );
        beta.kind = "deepseek".into();
        beta.model_map
            .insert("ds-beta".into(), "deepseek-flash".into());
        settings.channels.push(beta);
        settings.models.push(model("ds-beta", "1", "2"));
    })
    .await;
    let (_, key) = h
        .user_with_key("fim", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let fim = h
        .http
        .post(format!("{}/v1/completions", h.base))
        .bearer_auth(&key)
        .json(&json!({"model": "ds-beta", "prompt": "def add(a, b):", "suffix": "    return c", "max_tokens": 8}))
        .send()
        .await
        .unwrap();
    assert_eq!(fim.status(), 200);
    let seen = h.mock.journal().last().unwrap().clone();
    assert_eq!(seen.path, "/beta/completions");
    assert_eq!(seen.body["suffix"], "    return c");
    assert_eq!(seen.body["model"], "deepseek-flash");

    let messages = json!([{"role": "user", "content": "Write a list"},
        {"role": "assistant", "content": "```python\n", "prefix": true}]);
    let prefix = h
        .chat(
            &key,
            json!({"model": "ds-beta", "messages": messages, "stop": ["```"]}),
        )
        .await;
    assert_eq!(prefix.status(), 200);
    let seen = h.mock.journal().last().unwrap().clone();
    assert_eq!(seen.path, "/beta/chat/completions");
    assert_eq!(seen.body["messages"][1]["prefix"], true);
    h.shutdown().await;
}
