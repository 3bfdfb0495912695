//! An Anthropic upstream's event stream, in random reads → `chat.completion.chunk` data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenhub::protocol::anthropic::StreamTranslator;
use tokenhub_fuzz::{MAX_EVENT_BYTES, decode, reads};

fuzz_target!(|data: &[u8]| {
    let mut translator = StreamTranslator::new(0);
    for event in decode(&reads(data), MAX_EVENT_BYTES) {
        let Ok(chunks) = translator.on_event(&event) else {
            break;
        };
        for chunk in chunks.iter().filter(|c| c.as_str() != "[DONE]") {
            serde_json::from_str::<serde_json::Value>(chunk).expect("a chunk is JSON");
        }
    }
});
