//! What the relay meters in a native Responses answer (a channel that serves
//! `/v1/responses` itself): the Response object and each streamed event's data. The
//! counts it bills are within what the request may be charged for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenhub::protocol::responses::native::{EventMeaning, NativeEvent, NativeResponse};

fuzz_target!(|data: &[u8]| {
    if let Ok(response) = NativeResponse::parse(data) {
        let _ = response.is_answer();
        if let Some(counts) = response.counts() {
            assert!(counts.cached <= counts.prompt, "{counts:?}");
        }
        response.for_each_text(|text| assert!(data.len() >= text.len()));
    }
    if let Ok(event) = NativeEvent::parse(data) {
        match event.meaning() {
            EventMeaning::Finished(Some(counts)) | EventMeaning::Failed(_, Some(counts)) => {
                assert!(counts.cached <= counts.prompt, "{counts:?}");
            }
            _ => {}
        }
    }
});
