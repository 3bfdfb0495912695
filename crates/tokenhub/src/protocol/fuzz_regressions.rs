//! Inputs that crashed a fuzz target (`fuzz/`, `scripts/fuzz.sh`), kept as tests next
//! to the protocol code they crashed. Each is the crashing input, shrunk to what matters.
//!
//! All of these were token counts at `u64::MAX` from an upstream: the sums that turn a
//! provider's usage into OpenAI's overflowed (a panic in debug builds; in release a
//! wrapped, small count, that is a nearly free answer). The sums now saturate, so the
//! absurd figure stays absurd for the billing side to refuse or clamp.

use serde_json::Value;

use super::sse::SseDecoder;
use super::{anthropic, gemini, openai};

const MAX: u64 = u64::MAX;

fn usage_of(completion: &Value) -> (u64, u64, u64) {
    let usage = &completion["usage"];
    let count = |name: &str| {
        usage[name]
            .as_u64()
            .unwrap_or_else(|| panic!("{name}: {usage}"))
    };
    (
        count("prompt_tokens"),
        count("completion_tokens"),
        count("total_tokens"),
    )
}

/// `anthropic_response`: `input_tokens + cache_read + cache_creation` overflowed
/// (anthropic/response.rs), then `prompt + completion`.
#[test]
fn anthropic_counts_at_u64_max_saturate() {
    let prompt_at_max = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[{"type":"text","text":"Bonjour."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":18446744073709551615,"cache_creation_input_tokens":2000,"cache_read_input_tokens":500,"output_tokens":7}}"#;
    let answer = anthropic::response_to_openai(prompt_at_max, 0).unwrap();
    assert_eq!(usage_of(&answer), (MAX, 7, MAX));

    let output_at_max = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[{"type":"text","text":"Bonjour."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":18446744073709551615}}"#;
    let answer = anthropic::response_to_openai(output_at_max, 0).unwrap();
    assert_eq!(usage_of(&answer), (12, MAX, MAX));
}

/// `gemini_response`: `promptTokenCount + toolUsePromptTokenCount`,
/// `candidatesTokenCount + thoughtsTokenCount`, then `prompt + completion` overflowed
/// (gemini/response.rs).
#[test]
fn gemini_counts_at_u64_max_saturate() {
    let answer = |usage: &str| {
        let body = format!(
            r#"{{"candidates":[{{"content":{{"parts":[{{"text":"Hi"}}],"role":"model"}},"finishReason":"STOP","index":0}}],"usageMetadata":{usage},"modelVersion":"gemini-2.5-flash"}}"#
        );
        usage_of(&gemini::response_to_openai(body.as_bytes(), 0, "gemini").unwrap())
    };
    assert_eq!(
        answer(
            r#"{"promptTokenCount":18446744073709551615,"toolUsePromptTokenCount":3,"candidatesTokenCount":2}"#
        ),
        (MAX, 2, MAX)
    );
    assert_eq!(
        answer(
            r#"{"promptTokenCount":5,"candidatesTokenCount":18446744073709551615,"thoughtsTokenCount":4}"#
        ),
        (5, MAX, MAX)
    );
    assert_eq!(
        answer(
            r#"{"promptTokenCount":18446744073709551615,"candidatesTokenCount":18446744073709551615}"#
        ),
        (MAX, MAX, MAX)
    );
}

/// `gemini_stream` (fuzz/artifacts crash-08f2b7a7…): the same sums in the usage chunk
/// written at the end of a stream.
#[test]
fn gemini_stream_counts_at_u64_max_saturate() {
    let stream = concat!(
        r#"data: {"candidates": [{"content": {"parts": [{"text": "Checking."}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 18446744073709551615},"responseId": "s-2"}"#,
        "\n\n",
        r#"data: {"candidates": [{"content": {"parts": [{"functionCall": {"name": "get_weather","args": {"city": "Paris"}}}],"role": "model"},"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 18446744073709551615,"candidatesTokenCount": 18446744073709551615,"totalTokenCount": 18446744073709551615},"responseId": "s-2"}"#,
        "\n\n",
    );
    let mut decoder = SseDecoder::default();
    decoder.push(bytes::Bytes::from_static(stream.as_bytes()));
    let mut translator = gemini::StreamTranslator::new(0, "gemini");
    while let Some(event) = decoder.next_event().unwrap() {
        translator.on_event(&event).unwrap();
    }
    let payloads = translator.finish();
    let usage_chunk: Value = serde_json::from_str(&payloads[0]).unwrap();
    assert_eq!(usage_of(&usage_chunk), (MAX, MAX, MAX));
}

/// `openai_usage` (fuzz/artifacts crash-dc8a3cb4…): `prompt + completion` overflowed in
/// the usage chunk the relay writes for a client (openai/chunk.rs).
#[test]
fn openai_usage_chunk_at_u64_max_saturates() {
    let chunk = br#"{"id":"chatcmpl-s1","object":"chat.completion.chunk","created":1700000000,"model":"mock-gpt","choices":[],"usage":{"prompt_tokens":18446744073709551615,"completion_tokens":18446744073709551615,"total_tokens":18446744073709551615,"prompt_tokens_details":{"cached_tokens":18446744073709551615}}}"#;
    let counts = openai::chunk::CompletionView::parse(chunk)
        .unwrap()
        .usage_counts()
        .unwrap();
    let written = openai::chunk::usage_chunk_json("id", "chat.completion.chunk", 0, "m", counts);
    let written: Value = serde_json::from_slice(&written).unwrap();
    assert_eq!(usage_of(&written), (MAX, MAX, MAX));
}
