//! Golden tests of the OpenAI ⇄ Gemini translators, against checked-in fixtures in
//! `tests/fixtures/gemini/`:
//! - `request/<case>.openai.json` → `request/<case>.gemini.json`, and
//!   `request/errors.json`: requests that must be refused, with the exact message;
//! - `response/<case>.gemini.json` → `response/<case>.openai.json`;
//! - `stream/<case>.gemini.sse` → `stream/<case>.openai.json` (the `data:` payloads in
//!   order, including what the end of the upstream stream brings: chunk objects, and the
//!   string `"[DONE]"`).
//!
//! Values are compared as parsed JSON, exactly. Every case runs; failures are reported
//! together, by case name. Translated answers report `created` 1700000000 and, when the
//! upstream names no `modelVersion`, the model `gemini-test`.

use std::path::PathBuf;

use crate::golden::{self, check, check_file, read_json, report};

use serde_json::Value;
use tokenhub::protocol::gemini::{
    StreamTranslator, rejects_the_key, request_from_openai, response_to_openai,
};
use tokenhub::protocol::sse::SseDecoder;

const CREATED: i64 = 1_700_000_000;
const MODEL: &str = "gemini-test";

const SUITE: &str = "gemini";

fn fixtures(kind: &str) -> PathBuf {
    golden::fixtures(SUITE, kind)
}

fn cases(kind: &str, input_suffix: &str, expected_suffix: &str) -> Vec<(String, PathBuf, PathBuf)> {
    golden::cases(SUITE, kind, input_suffix, expected_suffix)
}

#[test]
fn requests_translate_to_gemini() {
    let mut failures = Vec::new();
    for (case, input, expected) in cases("request", ".openai.json", ".gemini.json") {
        let openai = read_json(&input);
        let body = serde_json::to_vec(&openai).unwrap();
        match request_from_openai(&body) {
            Ok(translated) => {
                let actual: Value = serde_json::from_slice(&translated.body).unwrap();
                check_file(&mut failures, &case, &actual, &expected);
                assert_eq!(translated.model, openai["model"], "{case}: model");
                let wants_stream = openai.get("stream") == Some(&Value::Bool(true));
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
        match request_from_openai(&body) {
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
    for (case, input, expected) in cases("response", ".gemini.json", ".openai.json") {
        let body = std::fs::read(&input).unwrap();
        match response_to_openai(&body, CREATED, MODEL) {
            Ok(actual) => check_file(&mut failures, &case, &actual, &expected),
            Err(e) => failures.push(format!("{case}: refused: {e}")),
        }
    }
    report(failures);
}

#[test]
fn an_error_body_with_status_200_is_not_taken_for_an_answer() {
    let body =
        br#"{"error":{"code":500,"message":"Internal error encountered.","status":"INTERNAL"}}"#;
    let error = response_to_openai(body, CREATED, MODEL).unwrap_err();
    assert_eq!(error.message, "Internal error encountered.");
}

#[test]
fn a_rejected_key_is_told_from_other_bad_requests() {
    let bad_key = br#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}"#;
    assert!(rejects_the_key(bad_key));
    let bad_request =
        br#"{"error":{"code":400,"message":"Invalid JSON payload","status":"INVALID_ARGUMENT"}}"#;
    assert!(!rejects_the_key(bad_request));
    assert!(!rejects_the_key(b"<html>"));
}

/// Feeds the SSE bytes in small pieces (events arrive split across reads), collects
/// every OpenAI `data:` payload, then what the end of the stream adds.
fn translate_stream(sse: &[u8]) -> Vec<Value> {
    let mut decoder = SseDecoder::default();
    let mut translator = StreamTranslator::new(CREATED, MODEL);
    let mut out = Vec::new();
    let parse = |data: String| serde_json::from_str(&data).unwrap_or(Value::String(data));
    for piece in sse.chunks(7) {
        decoder.push(bytes::Bytes::copy_from_slice(piece));
        while let Some(event) = decoder.next_event().unwrap() {
            out.extend(
                translator
                    .on_event(&event)
                    .expect("readable event")
                    .into_iter()
                    .map(parse),
            );
        }
    }
    if let Some(event) = decoder.finish() {
        out.extend(
            translator
                .on_event(&event)
                .expect("readable event")
                .into_iter()
                .map(parse),
        );
    }
    out.extend(translator.finish().into_iter().map(parse));
    out
}

#[test]
fn streams_translate_to_chunks() {
    let mut failures = Vec::new();
    for (case, input, expected) in cases("stream", ".gemini.sse", ".openai.json") {
        let actual = Value::Array(translate_stream(&std::fs::read(&input).unwrap()));
        check_file(&mut failures, &case, &actual, &expected);
    }
    report(failures);
}

#[test]
fn an_unreadable_stream_event_is_an_error() {
    let mut decoder = SseDecoder::default();
    decoder.push(bytes::Bytes::from_static(b"data: {not json\n\n"));
    let event = decoder.next_event().unwrap().unwrap();
    let error = StreamTranslator::new(CREATED, MODEL)
        .on_event(&event)
        .unwrap_err();
    assert!(
        error
            .message
            .starts_with("upstream sent an unreadable stream event"),
        "{error}"
    );
}
