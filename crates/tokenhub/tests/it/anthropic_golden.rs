//! Golden tests of the OpenAI ⇄ Anthropic translators, against checked-in fixtures in
//! `tests/fixtures/anthropic/`:
//! - `request/<case>.openai.json` → `request/<case>.anthropic.json`, and
//!   `request/errors.json`: requests that must be refused, with the exact message;
//! - `response/<case>.anthropic.json` → `response/<case>.openai.json`;
//! - `stream/<case>.anthropic.sse` → `stream/<case>.openai.json` (the `data:` payloads in
//!   order: chunk objects, and the string `"[DONE]"`).
//!
//! Values are compared as parsed JSON, exactly. Every case runs; failures are reported
//! together, by case name.

use std::path::PathBuf;

use crate::golden::{self, check, check_file, read_json, report};

use serde_json::Value;
use tokenhub::protocol::anthropic::{
    RequestOptions, StreamTranslator, request_from_openai, response_to_openai,
};
use tokenhub::protocol::sse::SseDecoder;

/// The `created` every translated answer reports in these tests.
const CREATED: i64 = 1_700_000_000;

const SUITE: &str = "anthropic";

fn fixtures(kind: &str) -> PathBuf {
    golden::fixtures(SUITE, kind)
}

fn cases(kind: &str, input_suffix: &str, expected_suffix: &str) -> Vec<(String, PathBuf, PathBuf)> {
    golden::cases(SUITE, kind, input_suffix, expected_suffix)
}

#[test]
fn requests_translate_to_anthropic() {
    let mut failures = Vec::new();
    for (case, input, expected) in cases("request", ".openai.json", ".anthropic.json") {
        let body = serde_json::to_vec(&read_json(&input)).unwrap();
        match request_from_openai(&body, &RequestOptions::default()) {
            Ok(translated) => {
                let actual: Value = serde_json::from_slice(&translated.body).unwrap();
                check_file(&mut failures, &case, &actual, &expected);
                let wants_stream = actual.get("stream") == Some(&Value::Bool(true));
                assert_eq!(translated.stream, wants_stream, "{case}: stream flag");
            }
            Err(e) => failures.push(format!("{case}: refused: {e}")),
        }
    }
    report(failures);
}

#[test]
fn unsupported_or_invalid_requests_are_refused_with_a_clear_message() {
    let mut failures = Vec::new();
    let Value::Array(cases) = read_json(&fixtures("request").join("errors.json")) else {
        panic!("errors.json must be an array");
    };
    for case in cases {
        let name = case["case"].as_str().unwrap_or("?");
        let body = serde_json::to_vec(&case["request"]).unwrap();
        match request_from_openai(&body, &RequestOptions::default()) {
            Ok(translated) => failures.push(format!(
                "{name}: accepted as {}",
                String::from_utf8_lossy(&translated.body)
            )),
            Err(e) => check(&mut failures, name, &Value::from(e.message), &case["error"]),
        }
    }
    report(failures);
}

#[test]
fn responses_translate_to_chat_completions() {
    let mut failures = Vec::new();
    for (case, input, expected) in cases("response", ".anthropic.json", ".openai.json") {
        let body = std::fs::read(&input).unwrap();
        match response_to_openai(&body, CREATED) {
            Ok(actual) => check_file(&mut failures, &case, &actual, &expected),
            Err(e) => failures.push(format!("{case}: refused: {e}")),
        }
    }
    report(failures);
}

#[test]
fn an_error_body_with_status_200_is_not_taken_for_an_answer() {
    let body = br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
    let error = response_to_openai(body, CREATED).unwrap_err();
    assert_eq!(error.message, "Overloaded");
}

/// Feeds the SSE bytes in small pieces (events arrive split across reads) and collects
/// every OpenAI `data:` payload.
fn translate_stream(sse: &[u8]) -> Vec<Value> {
    let mut decoder = SseDecoder::default();
    let mut translator = StreamTranslator::new(CREATED);
    let mut out = Vec::new();
    let mut take = |event, out: &mut Vec<Value>| {
        for data in translator.on_event(&event).expect("readable event") {
            out.push(serde_json::from_str(&data).unwrap_or(Value::String(data)));
        }
    };
    for piece in sse.chunks(7) {
        decoder.push(bytes::Bytes::copy_from_slice(piece));
        while let Some(event) = decoder.next_event().unwrap() {
            take(event, &mut out);
        }
    }
    if let Some(event) = decoder.finish() {
        take(event, &mut out);
    }
    out
}

#[test]
fn streams_translate_to_chunks() {
    let mut failures = Vec::new();
    for (case, input, expected) in cases("stream", ".anthropic.sse", ".openai.json") {
        let actual = Value::Array(translate_stream(&std::fs::read(&input).unwrap()));
        check_file(&mut failures, &case, &actual, &expected);
    }
    report(failures);
}

#[test]
fn an_unreadable_stream_event_is_an_error() {
    let mut decoder = SseDecoder::default();
    decoder.push(bytes::Bytes::from_static(
        b"event: message_start\ndata: {not json\n\n",
    ));
    let event = decoder.next_event().unwrap().unwrap();
    let error = StreamTranslator::new(CREATED).on_event(&event).unwrap_err();
    assert!(
        error
            .message
            .starts_with("upstream sent an unreadable stream event"),
        "{error}"
    );
}
