//! An Anthropic client's Messages body → the OpenAI chat body the relay serves.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenhub::protocol::anthropic::inbound::{InboundRequest, request_to_openai};
use tokenhub::protocol::openai::operation::Operation;
use tokenhub::protocol::openai::request::RawObject;

fuzz_target!(|body: &[u8]| {
    let Ok(request) = InboundRequest::parse(body) else {
        return;
    };
    let _ = request.is_stream();
    let Ok(chat) = request_to_openai(request) else {
        return;
    };
    // The relay reads the translated body like any client's.
    let bytes = serde_json::to_vec(&chat).expect("a Value serializes");
    let object = RawObject::parse(&bytes).expect("the translation is a JSON object");
    let _ = object.facts(Operation::Chat);
});
