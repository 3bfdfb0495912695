//! The usage readers: an upstream's completion or chunk (`CompletionView`), its usage in
//! any dialect (`WireUsage`), the usage the gateway writes back from it, and the cost it
//! splices into the answer (`Charge::add_to_answer`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenhub::protocol::anthropic::inbound::usage_from_openai;
use tokenhub::ledger::money::Nanos;
use tokenhub::protocol::openai::charge::Charge;
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
    let charged = Charge::new(Nanos(12_345), Nanos(-7)).add_to_answer(json);
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(json) {
        let _ = usage_from_openai(Some(&value));
        // Any JSON object gets the cost in its usage and keeps every other member.
        if let serde_json::Value::Object(mut members) = value {
            let charged = charged.expect("an object is charged");
            let charged: serde_json::Value =
                serde_json::from_slice(&charged).expect("the charged answer is JSON");
            let usage = &charged["usage"];
            assert_eq!(usage["cost"], serde_json::json!(0.000012345));
            assert_eq!(usage["tokenhub"]["balance_usd"], "-0.000000007");
            members.remove("usage");
            for (name, value) in members {
                assert_eq!(charged[&name], value, "{name}");
            }
        }
    }
});
