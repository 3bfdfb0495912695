//! A Gemini upstream's `alt=sse` stream, in random reads → `chat.completion.chunk` data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenhub::protocol::gemini::StreamTranslator;
use tokenhub_fuzz::{MAX_EVENT_BYTES, decode, reads};

fuzz_target!(|data: &[u8]| {
    let mut translator = StreamTranslator::new(0, "gemini-model");
    let mut chunks = Vec::new();
    for event in decode(&reads(data), MAX_EVENT_BYTES) {
        match translator.on_event(&event) {
            Ok(more) => chunks.extend(more),
            Err(_) => break,
        }
    }
    chunks.extend(translator.finish());
    for chunk in chunks.iter().filter(|c| c.as_str() != "[DONE]") {
        serde_json::from_str::<serde_json::Value>(chunk).expect("a chunk is JSON");
    }
});
