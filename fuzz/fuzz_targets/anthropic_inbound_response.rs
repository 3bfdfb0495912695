//! Any upstream's `chat.completion` (through the relay) → an Anthropic Message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenhub::protocol::anthropic::inbound::message_from_openai;

fuzz_target!(|answer: &[u8]| {
    let _ = message_from_openai(answer);
});
