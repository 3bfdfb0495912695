//! What the relay reads from a client's body (`RawObject`, `facts`) and the body it writes
//! back: the rewrite must stay valid JSON and keep the facts it did not change.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenhub::protocol::openai::operation::Operation;
use tokenhub::protocol::openai::request::{RawObject, Rewrite};

fuzz_target!(|body: &[u8]| {
    let Ok(object) = RawObject::parse(body) else {
        return;
    };
    for operation in [
        Operation::Chat,
        Operation::Completions,
        Operation::Embeddings,
    ] {
        let Ok(facts) = object.facts(operation) else {
            continue;
        };
        let mut rewrite = Rewrite::default();
        rewrite.set("model", serde_json::to_string("upstream-model").unwrap());
        if facts.stream {
            rewrite.set("stream_options", object.stream_options_with_usage());
        } else {
            rewrite.remove("stream_options");
        }
        let written = object.write_with(&rewrite);
        let reread = RawObject::parse(&written).expect("a rewritten body is a JSON object");
        let after = reread
            .facts(operation)
            .expect("a rewritten body stays valid");
        assert_eq!(after.model, "upstream-model");
        assert_eq!(after.stream, facts.stream);
        assert_eq!(after.max_output_tokens, facts.max_output_tokens);
        if facts.stream {
            assert!(after.client_wants_usage, "include_usage is forced on");
        }
    }
});
