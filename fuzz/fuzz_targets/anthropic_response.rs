//! An Anthropic upstream's Messages answer → `chat.completion`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenhub::protocol::anthropic::response_to_openai;

fuzz_target!(|answer: &[u8]| {
    let _ = response_to_openai(answer, 0);
});
