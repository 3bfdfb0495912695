//! What a request cost, written into the answer's `usage` (docs/api/cost.md).
//!
//! `usage.cost` is the cost in USD as a JSON number, as OpenRouter sends it, so clients
//! written for OpenRouter read it unchanged. The number is written as the exact decimal
//! of the usage record's nanodollars (`Nanos::to_usd_string`), never through a float.
//! `usage.tokenhub` repeats it as a decimal string (`cost_usd`) for clients that must not
//! round, with the owner's balance after this request was settled (`balance_usd`).
//!
//! One function writes these members ([`Charge::add_to_answer`], by splicing the answer's
//! text: `splice.rs`); every surface (chat, completions, embeddings, `/v1/messages`,
//! `/v1/responses`) goes through it.

use super::splice::{MemberSite, ObjectText};
use crate::ledger::money::{Nanos, UsdText};

/// A settled request's cost and its owner's balance right after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Charge {
    pub cost: Nanos,
    pub balance: Nanos,
    /// `cost` as text, rendered once for the answer's `usage`, the header and the log.
    cost_usd: UsdText,
}

impl Charge {
    pub fn new(cost: Nanos, balance: Nanos) -> Charge {
        Charge {
            cost,
            balance,
            cost_usd: cost.usd(),
        }
    }

    /// The cost's decimal USD text, as `usage.cost` and the header carry it.
    pub fn cost_usd(&self) -> UsdText {
        self.cost_usd
    }

    /// The `x-tokenhub-cost-usd` header value: the same decimal as `usage.cost`.
    pub fn header_value(&self) -> &str {
        self.cost_usd.as_str()
    }

    /// A `usage` object (raw JSON) with the cost members set; members of the same names
    /// the upstream sent (e.g. an OpenRouter upstream's own `cost`) are replaced, the
    /// rest kept byte for byte. A usage that is `null` (or not an object) becomes the
    /// cost alone.
    fn add_to_usage(&self, usage: &[u8]) -> Vec<u8> {
        let cost = self.cost_usd;
        let tokenhub = format!(
            r#"{{"cost_usd":"{cost}","balance_usd":"{}"}}"#,
            self.balance.usd()
        );
        let members = [
            ("cost", cost.as_str().as_bytes()),
            ("tokenhub", tokenhub.as_bytes()),
        ];
        ObjectText::read(usage)
            .or_else(|_| ObjectText::read(b"{}"))
            .expect("an empty object is an object")
            .with(&members)
    }

    /// An OpenAI answer or chunk (one JSON object) with the cost in its `usage`, which is
    /// added when the answer has none. Every other byte is kept. `None` when the body is
    /// not a JSON object.
    pub fn add_to_answer(&self, body: &[u8]) -> Option<Vec<u8>> {
        self.add_to_answer_at(body, None)
    }

    /// `add_to_answer`, spliced at `usage_site` when the metering reader noted where the
    /// answer's `usage` is (`CompletionView::usage_site`), so the answer is not read again.
    pub fn add_to_answer_at(
        &self,
        body: &[u8],
        usage_site: Option<&MemberSite>,
    ) -> Option<Vec<u8>> {
        let answer = match usage_site.and_then(|site| site.object_text(body, "usage")) {
            Some(answer) => answer,
            None => ObjectText::read(body).ok()?,
        };
        Some(self.add_to_read_answer(&answer))
    }

    fn add_to_read_answer(&self, answer: &ObjectText<'_>) -> Vec<u8> {
        let usage = self.add_to_usage(answer.get("usage").unwrap_or(b"null"));
        answer.with(&[("usage", &usage)])
    }
}

/// Copies the cost members of a chat answer's `usage` into another surface's usage
/// object (`/v1/messages`, `/v1/responses`), unchanged.
pub fn carry_cost(chat_usage: Option<&serde_json::Value>, usage: &mut serde_json::Value) {
    for member in ["cost", "tokenhub"] {
        if let Some(value) = chat_usage.and_then(|u| u.get(member)) {
            usage[member] = value.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn charge() -> Charge {
        Charge::new(Nanos(12_345), Nanos(4_999_987_655))
    }

    #[test]
    fn adds_the_cost_to_usage_and_keeps_the_rest() {
        let body = br#"{"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7,"cost":9}}"#;
        let out = charge().add_to_answer(body).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(r#"{"id":"c","choices":[],"usage":{"prompt_tokens":3,"#));
        assert!(text.contains(r#""cost":0.000012345,"#), "{text}");
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value["usage"]["tokenhub"],
            json!({"cost_usd": "0.000012345", "balance_usd": "4.999987655"})
        );
        assert_eq!(value["usage"]["total_tokens"], 7);
    }

    #[test]
    fn answers_without_usage_or_with_null_usage_get_one() {
        for body in [
            &br#"{"id":"c"}"#[..],
            br#"{"id":"c","usage":null}"#,
            br#"{"id":"c","usage":{}}"#,
        ] {
            let out = charge().add_to_answer(body).unwrap();
            let value: Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(value["usage"]["cost"], json!(0.000012345));
            assert_eq!(value["id"], "c");
        }
        assert_eq!(charge().header_value(), "0.000012345");
    }

    #[test]
    fn the_upstreams_own_cost_members_are_replaced_and_its_spacing_kept() {
        let body = b"{ \"id\": \"c\",\n  \"usage\": {\"cost\": 9, \"prompt_tokens\": 3, \"tokenhub\": 1 }\n}";
        let out = String::from_utf8(charge().add_to_answer(body).unwrap()).unwrap();
        assert_eq!(
            out,
            "{ \"id\": \"c\",\n  \"usage\": {\"cost\": 0.000012345, \"prompt_tokens\": 3, \
             \"tokenhub\": {\"cost_usd\":\"0.000012345\",\"balance_usd\":\"4.999987655\"} }\n}"
        );
        for (usage, cost) in [("5", "0.000012345"), ("[1]", "0.000012345")] {
            let body = format!(r#"{{"id":"c","usage":{usage}}}"#);
            let out = charge().add_to_answer(body.as_bytes()).unwrap();
            let value: Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(value["usage"]["cost"].to_string(), cost);
        }
        assert_eq!(charge().add_to_answer(b"[1]"), None);
        assert_eq!(charge().add_to_answer(br#"{"id":"c""#), None);
    }

    #[test]
    fn splicing_where_metering_found_usage_writes_what_reading_again_writes() {
        use super::super::chunk::CompletionView;
        for body in [
            &br#"{"id":"c","choices":[],"usage":{"prompt_tokens":3,"cost":9}}"#[..],
            br#"{"id":"c","choices":[]}"#,
            br#"{"usage":null,"choices":[]}"#,
            br#"{}"#,
            b"{ }",
            b"{ \"choices\" : [ ] ,\n \"usage\" : { } }",
            br#"{"usage":{"prompt_tokens":1},"choices":[]}"#,
        ] {
            let view = CompletionView::parse(body).unwrap();
            let site = view.usage_site().expect("one usage at most");
            assert!(site.object_text(body, "usage").is_some());
            let spliced = charge().add_to_answer_at(body, Some(site)).unwrap();
            assert_eq!(
                String::from_utf8(spliced).unwrap(),
                String::from_utf8(charge().add_to_answer(body).unwrap()).unwrap()
            );
        }
        let twice = br#"{"usage":null,"choices":[],"usage":{"prompt_tokens":1}}"#;
        assert_eq!(CompletionView::parse(twice).unwrap().usage_site(), None);
    }

    #[test]
    fn a_site_that_does_not_fit_the_text_is_refused() {
        let site = |value| MemberSite {
            value: Some(value),
            close: 10,
            has_members: true,
        };
        assert!(site(5..10).object_text(br#"{"u":12345}"#, "u").is_some());
        assert!(site(5..10).object_text(br#"{"u":1}"#, "u").is_none());
        assert!(site(5..10).object_text(br#"{"u":123456}"#, "u").is_none());
        assert!(site(5..12).object_text(br#"{"u":12345}"#, "u").is_none());
    }
}
