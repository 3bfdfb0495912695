//! What the relay reads from a native Responses answer (a channel that serves
//! `/v1/responses` itself): usage, text for a local count, errors. The answer itself
//! passes to the client unchanged; these views only meter it.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::ledger::money::TokenCounts;

/// The Responses usage object. `input_tokens` includes the cached ones and
/// `output_tokens` the reasoning ones, as OpenAI reports and bills them.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct NativeUsage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub input_tokens_details: Option<InputDetails>,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub output_tokens_details: Option<OutputDetails>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct InputDetails {
    #[serde(default)]
    pub cached_tokens: u64,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct OutputDetails {
    #[serde(default)]
    pub reasoning_tokens: u64,
}

impl NativeUsage {
    /// The counts to bill, or `None` when the object reports nothing.
    pub fn counts(&self) -> Option<TokenCounts> {
        if self.input_tokens == 0 && self.output_tokens == 0 {
            return None;
        }
        let cached = self
            .input_tokens_details
            .as_ref()
            .map_or(0, |d| d.cached_tokens);
        Some(
            TokenCounts {
                prompt: self.input_tokens,
                cached,
                completion: self.output_tokens,
                ..TokenCounts::default()
            }
            .capped(),
        )
    }

    pub fn reasoning_tokens(&self) -> u64 {
        self.output_tokens_details
            .as_ref()
            .map_or(0, |d| d.reasoning_tokens)
    }
}

/// A Response object, as much of it as metering reads.
#[derive(Debug, Default, Deserialize)]
pub struct NativeResponse {
    #[serde(default, deserialize_with = "or_none")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "or_none")]
    pub status: Option<String>,
    #[serde(default)]
    pub output: Option<Box<RawValue>>,
    /// A usage object that does not read as one (counts that are null, strings,
    /// negative or fractional: a buggy or hostile upstream) is taken as none reported:
    /// the answer still reaches the client, billed by the local count.
    #[serde(default, deserialize_with = "or_none")]
    pub usage: Option<NativeUsage>,
    #[serde(default)]
    pub error: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "or_none")]
    pub service_tier: Option<String>,
}

/// A member that does not read as its type (a buggy or hostile upstream's) is taken as
/// absent, so the rest of the event or answer is still metered: the client gets what the
/// upstream sent either way, and it is billed from the usage when that reads.
fn or_none<'de, D: serde::Deserializer<'de>, T: serde::de::DeserializeOwned>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    let reported = serde_json::Value::deserialize(deserializer)?;
    Ok(T::deserialize(reported).ok())
}

impl NativeResponse {
    pub fn parse(body: &[u8]) -> Result<NativeResponse, serde_json::Error> {
        serde_json::from_slice(body)
    }

    /// A usable answer: an object with `output`, not `failed` and without an `error`.
    pub fn is_answer(&self) -> bool {
        let failed = self.status.as_deref() == Some("failed");
        let error = self.error.as_ref().is_some_and(|e| e.get() != "null");
        self.output.is_some() && !failed && !error
    }

    pub fn counts(&self) -> Option<TokenCounts> {
        self.usage.as_ref().and_then(NativeUsage::counts)
    }

    /// The generated texts of `output` (message text, reasoning summaries, tool call
    /// arguments), for a local count when no usage was reported.
    pub fn for_each_text(&self, mut f: impl FnMut(&str)) {
        fn walk(value: &serde_json::Value, f: &mut impl FnMut(&str)) {
            match value {
                serde_json::Value::Array(items) => items.iter().for_each(|item| walk(item, f)),
                serde_json::Value::Object(members) => {
                    for (name, member) in members {
                        match member {
                            serde_json::Value::String(text)
                                if matches!(name.as_str(), "text" | "arguments") =>
                            {
                                f(text)
                            }
                            _ => walk(member, f),
                        }
                    }
                }
                _ => {}
            }
        }
        if let Some(output) = &self.output
            && let Ok(value) = serde_json::from_str::<serde_json::Value>(output.get())
        {
            walk(&value, &mut f);
        }
    }
}

/// One streamed event's data, as much of it as metering reads.
#[derive(Debug, Default, Deserialize)]
pub struct NativeEvent {
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default, deserialize_with = "or_none")]
    pub sequence_number: Option<u64>,
    /// `response.output_text.delta`, `response.reasoning_summary_text.delta`, …
    #[serde(default, deserialize_with = "or_none")]
    pub delta: Option<String>,
    /// `response.created` … `response.completed` / `incomplete` / `failed`.
    #[serde(default)]
    pub response: Option<NativeResponse>,
    /// The `error` event's message.
    #[serde(default, deserialize_with = "or_none")]
    pub message: Option<String>,
}

/// What an event means to the meter.
#[derive(Debug, PartialEq, Eq)]
pub enum EventMeaning {
    /// Generated text, for a local count if no usage arrives.
    Text(String),
    /// The answer is over (`response.completed` or `response.incomplete`), with its usage.
    Finished(Option<TokenCounts>),
    /// The answer failed (`response.failed` or `error`), with a message for the record.
    Failed(String, Option<TokenCounts>),
    Other,
}

impl NativeEvent {
    pub fn parse(data: &[u8]) -> Result<NativeEvent, serde_json::Error> {
        serde_json::from_slice(data)
    }

    pub fn meaning(self) -> EventMeaning {
        let counts = self.response.as_ref().and_then(NativeResponse::counts);
        match self.kind.as_str() {
            "response.completed" | "response.incomplete" => EventMeaning::Finished(counts),
            "response.failed" => {
                let message = self
                    .response
                    .as_ref()
                    .and_then(|r| r.error.as_ref())
                    .and_then(|e| {
                        crate::protocol::openai::error::upstream_error_message(
                            format!("{{\"error\":{}}}", e.get()).as_bytes(),
                        )
                    })
                    .unwrap_or_else(|| "the upstream response failed".into());
                EventMeaning::Failed(message, counts)
            }
            "error" => EventMeaning::Failed(
                self.message
                    .unwrap_or_else(|| "upstream error event".into()),
                None,
            ),
            kind if kind.ends_with("text.delta") || kind.ends_with("arguments.delta") => {
                self.delta.map_or(EventMeaning::Other, EventMeaning::Text)
            }
            _ => EventMeaning::Other,
        }
    }
}

/// The event the gateway ends a broken native stream with: OpenAI's `error` event,
/// numbered after the last one relayed.
pub fn error_event_json(message: &str, sequence_number: u64) -> String {
    serde_json::json!({
        "type": "error",
        "code": "upstream_error",
        "message": message,
        "param": null,
        "sequence_number": sequence_number,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_counts_cached_inside_input_and_reasoning_inside_output() {
        let body = br#"{"id":"resp_1","status":"completed","output":[],"usage":{"input_tokens":120,"input_tokens_details":{"cached_tokens":100},"output_tokens":30,"output_tokens_details":{"reasoning_tokens":20},"total_tokens":150}}"#;
        let response = NativeResponse::parse(body).unwrap();
        assert!(response.is_answer());
        let counts = response.counts().unwrap();
        assert_eq!(
            (counts.prompt, counts.cached, counts.completion),
            (120, 100, 30)
        );
        assert_eq!(response.usage.unwrap().reasoning_tokens(), 20);
    }

    #[test]
    fn unreadable_usage_is_none_reported_and_the_response_still_reads() {
        for usage in [
            r#"null"#,
            r#"{"input_tokens":null,"output_tokens":null}"#,
            r#"{"input_tokens":"many","output_tokens":3}"#,
            r#"{"input_tokens":-5,"output_tokens":1.5}"#,
            r#""plenty""#,
        ] {
            let body = format!(r#"{{"id":"r","status":"completed","output":[],"usage":{usage}}}"#);
            let response = NativeResponse::parse(body.as_bytes()).unwrap();
            assert!(response.is_answer(), "{usage}");
            assert_eq!(response.counts(), None, "{usage}");
            let event = format!(r#"{{"type":"response.completed","response":{body}}}"#);
            let meaning = NativeEvent::parse(event.as_bytes()).unwrap().meaning();
            assert_eq!(meaning, EventMeaning::Finished(None), "{usage}");
        }
    }

    #[test]
    fn members_of_the_wrong_type_are_absent_and_the_event_still_means_what_it_says() {
        let meaning = |data: &str| NativeEvent::parse(data.as_bytes()).unwrap().meaning();
        let completed = r#"{"type":"response.completed","sequence_number":"last","response":{"id":7,"status":["done"],"service_tier":1,"output":[],"usage":{"input_tokens":5,"output_tokens":2}}}"#;
        let EventMeaning::Finished(Some(counts)) = meaning(completed) else {
            panic!("{completed}")
        };
        assert_eq!((counts.prompt, counts.completion), (5, 2));
        for delta in [r#"42"#, r#"{"text":"Hi"}"#, r#"null"#] {
            let event = format!(
                r#"{{"type":"response.output_text.delta","delta":{delta},"sequence_number":-1}}"#
            );
            assert_eq!(meaning(&event), EventMeaning::Other, "{delta}");
        }
        assert_eq!(
            meaning(r#"{"type":"error","message":{"text":"down"}}"#),
            EventMeaning::Failed("upstream error event".into(), None)
        );
    }

    #[test]
    fn output_texts_are_found_for_a_local_count() {
        let body = br#"{"id":"r","output":[{"type":"message","content":[{"type":"output_text","text":"Hello there"}]},{"type":"function_call","name":"f","arguments":"{\"a\":1}"}]}"#;
        let mut texts = Vec::new();
        NativeResponse::parse(body)
            .unwrap()
            .for_each_text(|t| texts.push(t.to_string()));
        assert_eq!(texts, ["Hello there", "{\"a\":1}"]);
    }

    #[test]
    fn failed_responses_and_error_objects_are_not_answers() {
        let failed = br#"{"id":"r","status":"failed","output":[],"error":{"code":"server_error","message":"boom"}}"#;
        assert!(!NativeResponse::parse(failed).unwrap().is_answer());
        let error = br#"{"error":{"message":"bad key","type":"invalid_request_error"}}"#;
        assert!(!NativeResponse::parse(error).unwrap().is_answer());
        let ok_with_null_error = br#"{"id":"r","status":"completed","output":[],"error":null}"#;
        assert!(
            NativeResponse::parse(ok_with_null_error)
                .unwrap()
                .is_answer()
        );
    }

    #[test]
    fn events_mean_text_end_or_failure() {
        let meaning = |data: &str| NativeEvent::parse(data.as_bytes()).unwrap().meaning();
        assert_eq!(
            meaning(r#"{"type":"response.output_text.delta","delta":"Hi","sequence_number":3}"#),
            EventMeaning::Text("Hi".into())
        );
        let completed = meaning(
            r#"{"type":"response.completed","response":{"id":"r","status":"completed","output":[],"usage":{"input_tokens":5,"output_tokens":2}}}"#,
        );
        let EventMeaning::Finished(Some(counts)) = completed else {
            panic!("{completed:?}")
        };
        assert_eq!((counts.prompt, counts.completion), (5, 2));
        assert_eq!(
            meaning(
                r#"{"type":"response.failed","response":{"status":"failed","error":{"code":"server_error","message":"overloaded"}}}"#
            ),
            EventMeaning::Failed("overloaded".into(), None)
        );
        assert_eq!(
            meaning(r#"{"type":"error","message":"rate limited"}"#),
            EventMeaning::Failed("rate limited".into(), None)
        );
        assert_eq!(
            meaning(r#"{"type":"response.created"}"#),
            EventMeaning::Other
        );
    }
}
