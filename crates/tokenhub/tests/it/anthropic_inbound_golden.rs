//! Golden tests of the inbound Anthropic translators (Anthropic client → OpenAI
//! pipeline), against checked-in fixtures in `tests/fixtures/anthropic_inbound/`:
//! - `request/<case>.anthropic.json` → `request/<case>.openai.json`, and
//!   `request/errors.json`: requests that must be refused, with the exact message;
//! - `response/<case>.openai.json` → `response/<case>.anthropic.json`;
//! - `stream/<case>.openai.sse` → `stream/<case>.anthropic.json`: the events in order, as
//!   `{"event": name, "data": …}`, after the upstream ended.
//!
//! Values are compared as parsed JSON, exactly. `TOKENHUB_BLESS=1` writes expected files
//! that do not exist yet (review them before committing).

use std::path::PathBuf;

use crate::golden::{self, check_file, read, read_json, report};

use serde_json::{Value, json};
use tokenhub::protocol::anthropic::inbound::{
    InboundRequest, InboundStream, message_from_openai, request_to_openai,
};
use tokenhub::protocol::sse::SseDecoder;

const SUITE: &str = "anthropic_inbound";

fn fixtures(kind: &str) -> PathBuf {
    golden::fixtures(SUITE, kind)
}

fn cases(kind: &str, input_suffix: &str, expected_suffix: &str) -> Vec<(String, PathBuf, PathBuf)> {
    golden::cases(SUITE, kind, input_suffix, expected_suffix)
}

#[test]
fn requests_translate_to_openai() {
    let mut failures = Vec::new();
    for (case, input, expected) in cases("request", ".anthropic.json", ".openai.json") {
        let translated = InboundRequest::parse(read(&input).as_bytes()).and_then(request_to_openai);
        match translated {
            Ok(actual) => check_file(&mut failures, &case, &actual, &expected),
            Err(e) => failures.push(format!("{case}: refused: {e}")),
        }
    }
    report(failures);
}

#[test]
fn unsupported_requests_are_refused_with_exact_messages() {
    let cases = read_json(&fixtures("request").join("errors.json"));
    let mut failures = Vec::new();
    for case in cases.as_array().expect("errors.json is a list") {
        let body = case["request"].to_string();
        let result = InboundRequest::parse(body.as_bytes()).and_then(request_to_openai);
        match result {
            Ok(out) => failures.push(format!("{}: accepted as {out}", case["case"])),
            Err(e) if e.message != case["message"] => failures.push(format!(
                "{}:\n  expected {}\n  actual   {:?}",
                case["case"], case["message"], e.message
            )),
            Err(_) => {}
        }
    }
    report(failures);
}

#[test]
fn responses_translate_to_messages() {
    let mut failures = Vec::new();
    for (case, input, expected) in cases("response", ".openai.json", ".anthropic.json") {
        match message_from_openai(read(&input).as_bytes()) {
            Ok(actual) => check_file(&mut failures, &case, &actual, &expected),
            Err(e) => failures.push(format!("{case}: refused: {e}")),
        }
    }
    report(failures);
}

/// Every event of a whole OpenAI SSE body, fed in pieces of `step` bytes.
fn translate_stream(sse: &str, step: usize) -> Value {
    let mut decoder = SseDecoder::default();
    let mut translator = InboundStream::new();
    let mut events = Vec::new();
    for piece in sse.as_bytes().chunks(step) {
        decoder.push(bytes::Bytes::copy_from_slice(piece));
        while let Some(event) = decoder.next_event().expect("event fits") {
            if let Some(data) = &event.data {
                events.extend(translator.on_data(data));
            }
        }
    }
    if let Some(data) = decoder.finish().and_then(|e| e.data) {
        events.extend(translator.on_data(&data));
    }
    events.extend(translator.on_end());
    assert!(translator.is_finished());
    Value::Array(
        events
            .into_iter()
            .map(|e| json!({"event": e.name, "data": e.data}))
            .collect(),
    )
}

#[test]
fn streams_translate_to_events_in_order() {
    let mut failures = Vec::new();
    for (case, input, expected) in cases("stream", ".openai.sse", ".anthropic.json") {
        let sse = read(&input);
        let whole = translate_stream(&sse, sse.len().max(1));
        check_file(&mut failures, &case, &whole, &expected);
        // Split reads must not change the events.
        for step in [1, 7, 64] {
            if translate_stream(&sse, step) != whole {
                failures.push(format!("{case}: differs when read {step} bytes at a time"));
            }
        }
    }
    report(failures);
}

/// The rendered SSE form: `event: <name>` then `data: <json>`, and a blank line.
#[test]
fn events_render_as_named_sse() {
    let mut translator = InboundStream::new();
    let events = translator.on_data(br#"{"id":"chatcmpl-x","model":"m","choices":[]}"#);
    let text = String::from_utf8(events[0].to_sse().to_vec()).unwrap();
    assert!(text.starts_with("event: message_start\ndata: {"), "{text}");
    assert!(text.ends_with("}\n\n"), "{text}");
}
