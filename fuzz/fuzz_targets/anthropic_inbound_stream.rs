//! The relay's OpenAI stream, in random reads → Anthropic stream events.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenhub::protocol::anthropic::inbound::InboundStream;
use tokenhub_fuzz::{MAX_EVENT_BYTES, decode, reads};

fuzz_target!(|data: &[u8]| {
    let mut translator = InboundStream::new();
    let mut events = Vec::new();
    for event in decode(&reads(data), MAX_EVENT_BYTES) {
        if let Some(payload) = &event.data {
            events.extend(translator.on_data(payload));
        }
    }
    events.extend(translator.on_end());
    events.extend(translator.fail("cut"));
    for event in &events {
        let _ = event.to_sse();
    }
});
