//! What a request cost, written into the answer's `usage` (docs/api/cost.md).
//!
//! `usage.cost` is the cost in USD as a JSON number, as OpenRouter sends it, so clients
//! written for OpenRouter read it unchanged. The number is written as the exact decimal
//! of the usage record's nanodollars (`Nanos::to_usd_string`), never through a float.
//! `usage.tokenhub` repeats it as a decimal string (`cost_usd`) for clients that must not
//! round, with the owner's balance after this request was settled (`balance_usd`).
//!
//! One function writes these members ([`Charge::usage_members`]); every surface (chat,
//! completions, embeddings, `/v1/messages`, `/v1/responses`) goes through it.

use serde_json::value::RawValue;

use super::request::{RawObject, Rewrite};
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

    /// The members added to `usage`, without braces:
    /// `"cost":0.00012,"tokenhub":{"cost_usd":"0.00012","balance_usd":"9.99988"}`.
    pub fn usage_members(&self) -> String {
        let cost = self.cost_usd;
        format!(
            r#""cost":{cost},"tokenhub":{{"cost_usd":"{cost}","balance_usd":"{}"}}"#,
            self.balance.usd()
        )
    }

    /// The `x-tokenhub-cost-usd` header value: the same decimal as `usage.cost`.
    pub fn header_value(&self) -> &str {
        self.cost_usd.as_str()
    }

    /// A `usage` object (raw JSON) with the cost members added; members of the same
    /// names the upstream sent (e.g. an OpenRouter upstream's own `cost`) are replaced.
    pub fn add_to_usage(&self, usage: &RawValue) -> String {
        let members = self.usage_members();
        let Ok(object) = RawObject::parse(usage.get().as_bytes()) else {
            // `usage: null` (or not an object): the cost alone.
            return format!("{{{members}}}");
        };
        let mut rewrite = Rewrite::default();
        rewrite.remove("cost");
        rewrite.remove("tokenhub");
        let written = object.write_with(&rewrite);
        let inner = &written[1..written.len() - 1];
        if inner.is_empty() {
            format!("{{{members}}}")
        } else {
            format!(
                "{},{members}}}",
                String::from_utf8_lossy(&written[..written.len() - 1])
            )
        }
    }

    /// An OpenAI answer or chunk (one JSON object) with the cost in its `usage`, which is
    /// added when the answer has none. Every other member is kept byte for byte. `None`
    /// when the body is not a JSON object.
    pub fn add_to_answer(&self, body: &[u8]) -> Option<Vec<u8>> {
        let object = RawObject::parse(body).ok()?;
        let usage = match object.get("usage") {
            Some(usage) => self.add_to_usage(usage),
            None => format!("{{{}}}", self.usage_members()),
        };
        let mut rewrite = Rewrite::default();
        rewrite.set("usage", usage);
        Some(object.write_with(&rewrite))
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
}
