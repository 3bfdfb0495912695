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

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tokenhub::protocol::anthropic::inbound::{
    InboundRequest, InboundStream, message_from_openai, request_to_openai,
};
use tokenhub::protocol::sse::SseDecoder;

fn fixtures(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/anthropic_inbound")
        .join(kind)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `(case, input path, expected path)` for every input with this suffix.
fn cases(kind: &str, input_suffix: &str, expected_suffix: &str) -> Vec<(String, PathBuf, PathBuf)> {
    let dir = fixtures(kind);
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let case = name.strip_suffix(input_suffix)?.to_string();
            let expected = dir.join(format!("{case}{expected_suffix}"));
            Some((case, dir.join(name), expected))
        })
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no fixtures in {}", dir.display());
    cases
}

fn check(failures: &mut Vec<String>, case: &str, actual: &Value, expected_path: &Path) {
    if !expected_path.exists() && std::env::var_os("TOKENHUB_BLESS").is_some() {
        let text = serde_json::to_string_pretty(actual).unwrap() + "\n";
        std::fs::write(expected_path, text).unwrap();
        return;
    }
    let expected = read_json(expected_path);
    if *actual != expected {
        failures.push(format!(
            "{case}:\n  expected {expected}\n  actual   {actual}"
        ));
    }
}

fn report(failures: Vec<String>) {
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn requests_translate_to_openai() {
    let mut failures = Vec::new();
    for (case, input, expected) in cases("request", ".anthropic.json", ".openai.json") {
        let translated = InboundRequest::parse(read(&input).as_bytes()).and_then(request_to_openai);
        match translated {
            Ok(actual) => check(&mut failures, &case, &actual, &expected),
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
            Ok(actual) => check(&mut failures, &case, &actual, &expected),
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
        decoder.push(piece);
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
        check(&mut failures, &case, &whole, &expected);
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
