//! The local token counter, on any body of any operation and on any text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenhub::protocol::openai::operation::Operation;
use tokenhub::tokens::{Budget, count_prompt, count_text};

fuzz_target!(|body: &[u8]| {
    for operation in [
        Operation::Chat,
        Operation::Completions,
        Operation::Embeddings,
    ] {
        let _ = count_prompt(operation, body, Budget::SERVING_THREAD);
    }
    let _ = count_text(&String::from_utf8_lossy(body));
});
