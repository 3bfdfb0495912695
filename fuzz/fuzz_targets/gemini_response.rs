//! A Gemini upstream's `GenerateContentResponse` → `chat.completion`; its error bodies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenhub::protocol::gemini::{rejects_the_key, response_to_openai};

fuzz_target!(|answer: &[u8]| {
    let _ = response_to_openai(answer, 0, "gemini-model");
    let _ = rejects_the_key(answer);
});
