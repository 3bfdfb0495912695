//! Reading an upstream's error body, in any dialect; the message stays bounded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenhub::protocol::openai::error::upstream_error_message;

fuzz_target!(|body: &[u8]| {
    if let Some(message) = upstream_error_message(body) {
        assert!(message.chars().count() <= 1001, "the message is bounded");
    }
});
