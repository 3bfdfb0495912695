//! A client's OpenAI chat body → a Gemini `GenerateContentRequest`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenhub::protocol::gemini::request_from_openai;

fuzz_target!(|body: &[u8]| {
    if let Ok(translated) = request_from_openai(body) {
        serde_json::from_slice::<serde_json::Value>(&translated.body)
            .expect("the translated body is JSON");
    }
});
