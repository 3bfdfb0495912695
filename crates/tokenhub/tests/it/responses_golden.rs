//! Golden tests of the Responses translators (`protocol::responses`), both directions, for
//! every kind of channel, against checked-in fixtures in `tests/fixtures/responses/`:
//! - `request/<case>.responses.json` → `<case>.chat.json` (what an OpenAI-compatible
//!   channel receives), and through the outbound translators `<case>.anthropic.json` and
//!   `<case>.gemini.json`; `request/errors.json`: requests refused, with param and message;
//! - `response/<case>.chat.json` → `<case>.responses.json`; and every Anthropic and Gemini
//!   answer fixture of those suites, through their translators to chat, →
//!   `response/from_anthropic/<case>.responses.json` / `from_gemini/…`;
//! - `stream/<case>.chat.sse` → `<case>.events.json` (every event, in order), and the
//!   Anthropic and Gemini stream fixtures likewise → `stream/from_anthropic/…`, `from_gemini/…`.
//!
//! Values are compared as parsed JSON, exactly. `TOKENHUB_BLESS=1` writes expected files
//! that do not exist yet (review them before committing).

use std::path::Path;

use crate::golden::{self, check, check_file, read_json, report};

use serde_json::{Value, json};
use tokenhub::protocol::responses::{Frame, ResponsesStream, request_to_chat, response_from_chat};
use tokenhub::protocol::sse::SseDecoder;
use tokenhub::protocol::{anthropic, gemini};

const SUITE: &str = "responses";
const CREATED: i64 = 1_700_000_000;
/// The upstream ids the chained request translations are made for.
const CLAUDE: &str = "claude-sonnet-4-6";
const GEMINI: &str = "gemini-2.5-flash";

/// Every translated answer is the answer to this request.
fn frame() -> Frame {
    Frame::new(
        "resp_golden".into(),
        CREATED,
        &json!({"model": "test-model", "metadata": {"case": "golden"}}),
    )
}

fn with_model(chat: &Value, model: &str) -> Vec<u8> {
    let mut chat = chat.clone();
    chat["model"] = json!(model);
    serde_json::to_vec(&chat).unwrap()
}

#[test]
fn requests_translate_to_chat_and_on_to_anthropic_and_gemini() {
    let mut failures = Vec::new();
    for (case, input, expected) in golden::cases(SUITE, "request", ".responses.json", ".chat.json")
    {
        let translated = match request_to_chat(&read_json(&input), &[]) {
            Ok(translated) => translated,
            Err(e) => {
                failures.push(format!("{case}: refused: {e}"));
                continue;
            }
        };
        check_file(&mut failures, &case, &translated.chat, &expected);
        let dir = input.parent().unwrap();
        let options = anthropic::RequestOptions::default();
        // A refusal is part of the expectation (`{"refused": message}`): what a client of
        // that channel gets.
        let actual =
            anthropic::request_from_openai(&with_model(&translated.chat, CLAUDE), &options)
                .map(|body| serde_json::from_slice(&body.body).unwrap())
                .unwrap_or_else(|e| json!({"refused": e.message}));
        let path = dir.join(format!("{case}.anthropic.json"));
        check_file(
            &mut failures,
            &format!("{case} (anthropic)"),
            &actual,
            &path,
        );
        let actual = gemini::request_from_openai(&with_model(&translated.chat, GEMINI))
            .map(|body| serde_json::from_slice(&body.body).unwrap())
            .unwrap_or_else(|e| json!({"refused": e.message}));
        let path = dir.join(format!("{case}.gemini.json"));
        check_file(&mut failures, &format!("{case} (gemini)"), &actual, &path);
    }
    report(failures);
}

#[test]
fn a_turn_is_the_input_without_instructions_after_the_history() {
    let history = vec![
        json!({"role": "user", "content": "one"}),
        json!({"role": "assistant", "content": "reply"}),
    ];
    let request = json!({"model": "m", "instructions": "rules", "input": "two"});
    let translated = request_to_chat(&request, &history).unwrap();
    assert_eq!(
        translated.turn,
        vec![json!({"role": "user", "content": "two"})]
    );
    assert_eq!(
        translated.chat["messages"],
        json!([{"role": "system", "content": "rules"}, history[0], history[1],
            {"role": "user", "content": "two"}])
    );
}

#[test]
fn unsupported_requests_are_refused_with_param_and_message() {
    let cases = read_json(&golden::fixtures(SUITE, "request").join("errors.json"));
    let mut failures = Vec::new();
    for case in cases.as_array().expect("errors.json is a list") {
        let name = case["case"].as_str().unwrap_or("?");
        match request_to_chat(&case["request"], &[]) {
            Ok(translated) => failures.push(format!("{name}: accepted as {}", translated.chat)),
            Err(e) => check(
                &mut failures,
                name,
                &json!({"param": e.param, "message": e.message}),
                &case["error"],
            ),
        }
    }
    report(failures);
}

#[test]
fn chat_answers_translate_to_responses() {
    let mut failures = Vec::new();
    for (case, input, expected) in golden::cases(SUITE, "response", ".chat.json", ".responses.json")
    {
        let actual = response_from_chat(&frame(), &std::fs::read(&input).unwrap())
            .unwrap_or_else(|e| json!({"error": e.message}));
        check_file(&mut failures, &case, &actual, &expected);
    }
    report(failures);
}

/// A vendor's answer translator, to chat.
type ToChat = fn(&[u8]) -> Result<Value, String>;

#[test]
fn anthropic_and_gemini_answers_translate_to_responses() {
    let mut failures = Vec::new();
    let vendors: [(&str, &str, ToChat); 2] = [
        ("anthropic", ".anthropic.json", |body| {
            anthropic::response_to_openai(body, CREATED).map_err(|e| e.message)
        }),
        ("gemini", ".gemini.json", |body| {
            gemini::response_to_openai(body, CREATED, GEMINI).map_err(|e| e.message)
        }),
    ];
    for (vendor, suffix, to_chat) in vendors {
        let expected_dir = golden::fixtures(SUITE, "response").join(format!("from_{vendor}"));
        std::fs::create_dir_all(&expected_dir).unwrap();
        for (case, input, _) in golden::cases(vendor, "response", suffix, ".openai.json") {
            let actual = to_chat(&std::fs::read(&input).unwrap())
                .and_then(|chat| {
                    response_from_chat(&frame(), chat.to_string().as_bytes()).map_err(|e| e.message)
                })
                .unwrap_or_else(|message| json!({"error": message}));
            let expected = expected_dir.join(format!("{case}.responses.json"));
            check_file(
                &mut failures,
                &format!("{vendor}/{case}"),
                &actual,
                &expected,
            );
        }
    }
    report(failures);
}

/// The Responses events a chat SSE body becomes, fed in small pieces.
fn events_of_chat_sse(sse: &[u8]) -> Vec<Value> {
    let mut decoder = SseDecoder::default();
    let mut translator = ResponsesStream::new(frame());
    let mut out: Vec<Value> = translator.start().into_iter().map(|e| e.data).collect();
    for piece in sse.chunks(7) {
        decoder.push(piece);
        while let Some(event) = decoder.next_event().unwrap() {
            let data = event.data.expect("data");
            out.extend(translator.on_data(&data).into_iter().map(|e| e.data));
        }
    }
    out.extend(translator.on_end().into_iter().map(|e| e.data));
    out
}

/// The same for chat data payloads a vendor stream translator produced.
fn events_of_chat_data(payloads: Vec<String>) -> Vec<Value> {
    let sse: String = payloads.iter().map(|d| format!("data: {d}\n\n")).collect();
    events_of_chat_sse(sse.as_bytes())
}

#[test]
fn chat_streams_translate_to_response_events() {
    let mut failures = Vec::new();
    for (case, input, expected) in golden::cases(SUITE, "stream", ".chat.sse", ".events.json") {
        let events = events_of_chat_sse(&std::fs::read(&input).unwrap());
        check_numbering(&mut failures, &case, &events);
        check_file(&mut failures, &case, &Value::Array(events), &expected);
    }
    report(failures);
}

#[test]
fn anthropic_and_gemini_streams_translate_to_response_events() {
    let mut failures = Vec::new();
    for vendor in ["anthropic", "gemini"] {
        let expected_dir = golden::fixtures(SUITE, "stream").join(format!("from_{vendor}"));
        std::fs::create_dir_all(&expected_dir).unwrap();
        let suffix = format!(".{vendor}.sse");
        for (case, input, _) in golden::cases(vendor, "stream", &suffix, ".openai.json") {
            let payloads = vendor_stream_to_chat(vendor, &input);
            let events = events_of_chat_data(payloads);
            let name = format!("{vendor}/{case}");
            check_numbering(&mut failures, &name, &events);
            let expected = expected_dir.join(format!("{case}.events.json"));
            check_file(&mut failures, &name, &Value::Array(events), &expected);
        }
    }
    report(failures);
}

/// The chat `data:` payloads a vendor's stream fixture translates to.
fn vendor_stream_to_chat(vendor: &str, input: &Path) -> Vec<String> {
    let mut decoder = SseDecoder::default();
    decoder.push(&std::fs::read(input).unwrap());
    let mut events = Vec::new();
    while let Some(event) = decoder.next_event().unwrap() {
        events.push(event);
    }
    events.extend(decoder.finish());
    let mut out = Vec::new();
    if vendor == "anthropic" {
        let mut translator = anthropic::StreamTranslator::new(CREATED);
        for event in &events {
            out.extend(translator.on_event(event).expect("readable event"));
        }
    } else {
        let mut translator = gemini::StreamTranslator::new(CREATED, GEMINI);
        for event in &events {
            out.extend(translator.on_event(event).expect("readable event"));
        }
        out.extend(translator.finish());
    }
    out
}

/// `sequence_number` counts every event from 0, and exactly one terminal event ends them.
fn check_numbering(failures: &mut Vec<String>, case: &str, events: &[Value]) {
    for (n, event) in events.iter().enumerate() {
        if event["sequence_number"] != json!(n) {
            failures.push(format!(
                "{case}: event {n} numbered {}",
                event["sequence_number"]
            ));
        }
    }
    let terminal = [
        "response.completed",
        "response.incomplete",
        "response.failed",
    ];
    let ends = events
        .iter()
        .filter(|e| terminal.contains(&e["type"].as_str().unwrap_or_default()))
        .count();
    let last = events
        .last()
        .and_then(|e| e["type"].as_str())
        .unwrap_or_default();
    if ends != 1 || !terminal.contains(&last) {
        failures.push(format!("{case}: {ends} terminal events, last is {last}"));
    }
}
