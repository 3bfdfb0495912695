//! OpenAI clients against models whose rules Anthropic enforces (issue 19, finding 2),
//! served by the mock's strict Messages dialect, which refuses what Anthropic refuses:
//! `temperature` with `top_p` on Sonnet 4.6, sampling and budget thinking on Opus 4.7,
//! thinking with a forced tool, and a tool loop's next turn without its signed thinking
//! blocks. Each request here was refused before the translator learnt the rule.

use crate::harness::*;
use mock_upstream::messages::thinking::{REDACTED, THOUGHT, sign};
use mock_upstream::tokens::TOOL_REPLY_PREFIX;
use serde_json::{Value, json};
use tokenhub::accounts::KeyOptions;
use tokenhub::ledger::money::Nanos;

/// Temperature and top_p, not both; adaptive thinking or a budget.
const SONNET: &str = "claude-sonnet-4-6";
/// No sampling parameters; adaptive thinking only.
const OPUS: &str = "claude-opus-4-7";

async fn start() -> (Harness, String) {
    let h = Harness::start_with(Backend::Sqlite, |settings, mock_url| {
        let mut claude = channel("claude", &format!("{mock_url}/v1"), &[SONNET, OPUS], 0);
        claude.kind = "anthropic".into();
        settings.channels.push(claude);
        settings.models.push(model(SONNET, "3", "15"));
        settings.models.push(model(OPUS, "5", "25"));
    })
    .await;
    let (_, key) = h
        .user_with_key("ada", Nanos::from_usd(1), KeyOptions::default())
        .await;
    (h, key)
}

fn ask(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

fn weather_tool() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}])
}

/// Sends and expects a 200, returning the body the upstream received and the answer.
async fn chat_ok(h: &Harness, key: &str, request: Value) -> (Value, Value) {
    let response = h.chat(key, request).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    let upstream = h.mock.journal().last().unwrap().body.clone();
    (upstream, body)
}

#[tokio::test]
async fn temperature_and_top_p_reach_sonnet_4_6_as_temperature_alone() {
    let (h, key) = start().await;
    let request = json!({"model": SONNET, "messages": ask("hi"), "temperature": 0.5, "top_p": 0.9});
    let (upstream, _) = chat_ok(&h, &key, request).await;
    assert_eq!(upstream["temperature"], 0.5);
    assert!(upstream.get("top_p").is_none(), "{upstream}");
    // top_p alone is kept.
    let request = json!({"model": SONNET, "messages": ask("hi"), "top_p": 0.9});
    let (upstream, _) = chat_ok(&h, &key, request).await;
    assert_eq!(upstream["top_p"], 0.9);
    h.shutdown().await;
}

#[tokio::test]
async fn sampling_parameters_are_left_out_for_opus_4_7() {
    let (h, key) = start().await;
    let request = json!({"model": OPUS, "messages": ask("hi"),
        "temperature": 0.2, "top_p": 0.9, "top_k": 20});
    let (upstream, body) = chat_ok(&h, &key, request).await;
    for name in ["temperature", "top_p", "top_k"] {
        assert!(upstream.get(name).is_none(), "{name}: {upstream}");
    }
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    h.shutdown().await;
}

#[tokio::test]
async fn reasoning_effort_on_opus_4_7_is_adaptive_thinking_with_an_effort() {
    let (h, key) = start().await;
    let request = json!({"model": OPUS, "messages": ask("prove it"), "reasoning_effort": "high"});
    let (upstream, body) = chat_ok(&h, &key, request).await;
    assert_eq!(upstream["thinking"], json!({"type": "adaptive"}));
    assert_eq!(upstream["output_config"], json!({"effort": "high"}));
    assert_eq!(upstream["max_tokens"], 16_384 + 4096);
    let message = &body["choices"][0]["message"];
    assert_eq!(message["reasoning_content"], THOUGHT);
    h.shutdown().await;
}

#[tokio::test]
async fn a_forced_tool_is_called_without_thinking() {
    let (h, key) = start().await;
    let knobs = json!({"tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}}});
    let named = json!({"type": "function", "function": {"name": "get_weather"}});
    for (choice, sent) in [
        (json!("required"), json!({"type": "any"})),
        (named, json!({"type": "tool", "name": "get_weather"})),
    ] {
        let request = json!({"model": SONNET, "messages": ask("weather in Paris?"),
            "reasoning_effort": "high", "tools": weather_tool(), "tool_choice": choice,
            "mock": knobs});
        let (upstream, body) = chat_ok(&h, &key, request).await;
        assert_eq!(upstream["tool_choice"], sent);
        assert!(upstream.get("thinking").is_none(), "{upstream}");
        assert!(upstream.get("output_config").is_none(), "{upstream}");
        assert_eq!(upstream["max_tokens"], 4096);
        assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    }
    h.shutdown().await;
}

/// The first turn of a tool loop with thinking on, then the second with the call and its
/// result as the client sends them back; `assistant` is the first turn's message as the
/// client rebuilt it (from the answer, or from the stream's pieces).
async fn second_turn(h: &Harness, key: &str, assistant: Value) -> Value {
    let call_id = assistant["tool_calls"][0]["id"].clone();
    let messages = json!([
        {"role": "user", "content": "weather in Paris?"},
        assistant,
        {"role": "tool", "tool_call_id": call_id, "content": "18C and sunny"}
    ]);
    let request = json!({"model": SONNET, "messages": messages, "reasoning_effort": "low",
        "tools": weather_tool(), "mock": {"echo_tool_result": true}});
    let (upstream, body) = chat_ok(h, key, request).await;
    // The turn goes back as Anthropic issued it: signed thinking, redacted thinking, call.
    let turn = &upstream["messages"][1];
    assert_eq!(turn["role"], "assistant");
    assert_eq!(
        turn["content"][0],
        json!({"type": "thinking", "thinking": THOUGHT, "signature": sign(THOUGHT)})
    );
    assert_eq!(
        turn["content"][1],
        json!({"type": "redacted_thinking", "data": REDACTED})
    );
    let tool_use = &turn["content"][2];
    assert_eq!(tool_use["type"], "tool_use");
    assert!(tool_use["id"].as_str().unwrap().starts_with("toolu_mock_"));
    assert_eq!(
        upstream["messages"][2]["content"][0]["tool_use_id"],
        tool_use["id"]
    );
    body
}

fn first_turn(stream: bool) -> Value {
    json!({"model": SONNET, "messages": ask("weather in Paris?"), "stream": stream,
        "reasoning_effort": "low", "tools": weather_tool(),
        "mock": {"redacted_thinking": true,
                 "tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}}}})
}

#[tokio::test]
async fn a_tool_loop_with_thinking_carries_the_signed_blocks_to_the_next_turn() {
    let (h, key) = start().await;
    let (upstream, body) = chat_ok(&h, &key, first_turn(false)).await;
    assert_eq!(upstream["thinking"], json!({"type": "adaptive"}));
    let message = body["choices"][0]["message"].clone();
    assert_eq!(message["reasoning_content"], THOUGHT);
    let answer = second_turn(&h, &key, message).await;
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        format!("{TOOL_REPLY_PREFIX}18C and sunny")
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_streamed_tool_loop_with_thinking_carries_the_signed_blocks_too() {
    let (h, key) = start().await;
    let response = h.chat(&key, first_turn(true)).await;
    assert_eq!(response.status(), 200);
    // The client rebuilds the assistant message from the pieces, as SDK helpers do.
    let (mut id, mut name, mut arguments, mut reasoning) =
        (String::new(), String::new(), String::new(), String::new());
    for data in sse_data(&response.text().await.unwrap()) {
        let Ok(chunk) = serde_json::from_str::<Value>(&data) else {
            continue; // [DONE]
        };
        let delta = &chunk["choices"][0]["delta"];
        reasoning.push_str(delta["reasoning_content"].as_str().unwrap_or_default());
        if let Some(call) = delta["tool_calls"].get(0) {
            id.push_str(call["id"].as_str().unwrap_or_default());
            name.push_str(call["function"]["name"].as_str().unwrap_or_default());
            arguments.push_str(call["function"]["arguments"].as_str().unwrap_or_default());
        }
    }
    assert_eq!(reasoning, THOUGHT);
    assert_eq!(arguments, r#"{"city":"Paris"}"#);
    let assistant = json!({"role": "assistant", "content": null, "tool_calls": [
        {"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}]});
    let answer = second_turn(&h, &key, assistant).await;
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    h.shutdown().await;
}
