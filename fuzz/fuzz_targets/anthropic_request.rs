//! A client's OpenAI chat body → an Anthropic Messages body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenhub::protocol::anthropic::{RequestOptions, request_from_openai};

fuzz_target!(|body: &[u8]| {
    if let Ok(translated) = request_from_openai(body, &RequestOptions::default()) {
        serde_json::from_slice::<serde_json::Value>(&translated.body)
            .expect("the translated body is JSON");
    }
});
