//! The usage readers: an upstream's completion or chunk (`CompletionView`), its usage in
//! any dialect (`WireUsage`), and the usage the gateway writes back from it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenhub::protocol::anthropic::inbound::usage_from_openai;
use tokenhub::protocol::openai::chunk::{CompletionView, usage_chunk_json};
use tokenhub::protocol::openai::usage::WireUsage;

fuzz_target!(|json: &[u8]| {
    if let Ok(view) = CompletionView::parse(json) {
        let _ = view.is_usage_only();
        let _ = view.has_finish_reason();
        let mut text_bytes = 0usize;
        view.for_each_text(|text| text_bytes += text.len());
        if let Some(counts) = view.usage_counts() {
            let chunk = usage_chunk_json("id", "chat.completion.chunk", 0, "m", counts);
            let reread = CompletionView::parse(&chunk).expect("the usage chunk reads back");
            assert!(reread.usage_counts().is_some() || counts == Default::default());
        }
    }
    if let Ok(usage) = serde_json::from_slice::<WireUsage>(json) {
        let _ = usage.counts();
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(json) {
        let _ = usage_from_openai(Some(&value));
    }
});
