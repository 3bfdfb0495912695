//! A native Responses stream (`Operation::Responses`): OpenAI's events pass to the client
//! byte for byte; the meter reads usage from `response.completed` (or `incomplete`,
//! `failed`), text deltas for a local count when none arrives, and failures for the
//! record. Two events are rewritten: the final one (`response.completed` /
//! `response.incomplete`), whose `response.usage` gets the cost once the request is settled
//! there (docs/api/cost.md), and an error event that carries a channel key (redacted).

use std::time::Instant;

use bytes::Bytes;

use super::MeteredStream;
use crate::protocol::openai::charge::Charge;
use crate::protocol::openai::request::{RawObject, Rewrite};
use crate::protocol::responses::native::{EventMeaning, NativeEvent, error_event_json};
use crate::protocol::sse::SseEvent;

#[derive(Default)]
pub(super) struct NativeProgress {
    /// The last `sequence_number` relayed, so an event the gateway adds follows it.
    last_sequence: Option<u64>,
    /// The data of the final event (`response.completed` / `response.incomplete`).
    final_event: Option<Bytes>,
}

impl MeteredStream {
    pub(super) fn on_native_event(&mut self, event: SseEvent) {
        let Some(data) = event.data.clone() else {
            return;
        };
        let Ok(parsed) = NativeEvent::parse(&data) else {
            self.ready.push_back(event.raw);
            return;
        };
        if let Some(sequence) = parsed.sequence_number {
            self.native.last_sequence = Some(sequence);
        }
        let mut raw = event.raw;
        match parsed.meaning() {
            EventMeaning::Text(text) => {
                self.meter.text.push(&text);
                self.meter.first_token_at.get_or_insert_with(Instant::now);
            }
            EventMeaning::Finished(counts) => {
                self.meter.usage = counts.or(self.meter.usage);
                self.saw_finish = true;
                self.saw_done = true;
                let charged = self.settle(None).and_then(|charge| {
                    let data = with_response_cost(&data, charge)?;
                    Some((sse_event(event.name.as_deref(), &data), data))
                });
                let data = match charged {
                    Some((charged_raw, charged_data)) => {
                        raw = charged_raw;
                        charged_data
                    }
                    None => data,
                };
                self.native.final_event = Some(data);
            }
            EventMeaning::Failed(message, counts) => {
                self.meter.usage = counts.or(self.meter.usage);
                let text = String::from_utf8_lossy(&raw);
                let redacted = self.channel.redact(&text);
                if redacted != text {
                    raw = Bytes::from(redacted);
                }
                self.meter.error = Some(self.channel.redact(&message));
            }
            EventMeaning::Other => {}
        }
        self.ready.push_back(raw);
    }

    /// OpenAI's `error` event, for a native stream the gateway must end itself.
    pub(super) fn native_error_event(&self, message: &str) -> Bytes {
        let sequence = self.native.last_sequence.map_or(0, |n| n + 1);
        let mut out = b"event: error\n".to_vec();
        out.extend_from_slice(&SseEvent::data_bytes(
            error_event_json(message, sequence).as_bytes(),
        ));
        Bytes::from(out)
    }

    /// The final event's data of a native Responses stream, once it has been read.
    pub fn native_final_event(&self) -> Option<&Bytes> {
        self.native.final_event.as_ref()
    }
}

/// A final event's data with the cost in its `response.usage`; every other member is
/// kept byte for byte. `None` when the event has no Response object.
fn with_response_cost(data: &[u8], charge: Charge) -> Option<Bytes> {
    let event = RawObject::parse(data).ok()?;
    let response = charge.add_to_answer(event.get("response")?.get().as_bytes())?;
    let mut rewrite = Rewrite::default();
    rewrite.set("response", String::from_utf8(response).ok()?);
    Some(Bytes::from(event.write_with(&rewrite)))
}

/// An event as OpenAI writes it: its `event:` line, then its `data:` line.
fn sse_event(name: Option<&str>, data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + 64);
    if let Some(name) = name {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(&SseEvent::data_bytes(data));
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use futures_util::StreamExt;
    use serde_json::Value;

    use super::super::tests::Fixture;
    use crate::ledger::money::Nanos;
    use crate::protocol::openai::operation::Operation;
    use crate::providers::ByteStream;

    const EVENTS: [&str; 3] = [
        "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"status\":\"in_progress\",\"output\":[]}}\n\n",
        "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"delta\":\"Hi there\"}\n\n",
        "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":2,\"response\":{\"id\":\"resp_1\",\"status\":\"completed\",\"output\":[],\"usage\":{\"input_tokens\":5,\"output_tokens\":2,\"total_tokens\":7}}}\n\n",
    ];

    /// The final event carries the settled cost; every event before it is relayed byte
    /// for byte.
    #[tokio::test]
    async fn only_the_final_event_is_rewritten_and_it_carries_the_recorded_cost() {
        let fixture = Fixture::new().await;
        let frames = EVENTS.map(|event| Ok(Bytes::from_static(event.as_bytes())));
        let upstream: ByteStream = Box::pin(futures_util::stream::iter(frames));
        let body = br#"{"model":"m","stream":true,"input":"hi"}"#;
        let mut stream = fixture
            .stream(upstream, Operation::Responses, body, "req-native-cost")
            .await;
        let mut relayed = Vec::new();
        while let Some(item) = stream.next().await {
            relayed.push(item.unwrap());
        }
        assert_eq!(relayed.len(), 3);
        assert_eq!(&relayed[0][..], EVENTS[0].as_bytes());
        assert_eq!(&relayed[1][..], EVENTS[1].as_bytes());

        let last = String::from_utf8(relayed[2].to_vec()).unwrap();
        let data = last
            .strip_prefix("event: response.completed\ndata: ")
            .and_then(|rest| rest.strip_suffix("\n\n"))
            .expect("OpenAI's event form");
        assert!(
            data.starts_with(r#"{"type":"response.completed","sequence_number":2,"response":{"id":"resp_1","status":"completed","output":[],"usage":{"input_tokens":5,"output_tokens":2,"total_tokens":7,"cost":"#),
            "the rest of the event is unchanged: {data}"
        );
        assert_eq!(stream.native_final_event().unwrap(), data.as_bytes());

        fixture.writer.flush().await;
        let record = fixture
            .store
            .usage_by_request_id("req-native-cost")
            .await
            .unwrap()
            .expect("settled once");
        assert_eq!((record.prompt_tokens, record.completion_tokens), (5, 2));
        let usage = &serde_json::from_str::<Value>(data).unwrap()["response"]["usage"];
        let cost = record.cost.to_usd_string();
        // The number as written (serde_json would read it back as a float).
        assert!(
            data.contains(&format!(r#""cost":{cost},"tokenhub""#)),
            "{data}"
        );
        assert_eq!(usage["tokenhub"]["cost_usd"], cost.as_str());
        let balance = Nanos::from_usd(1) - record.cost;
        assert_eq!(
            usage["tokenhub"]["balance_usd"],
            balance.to_usd_string().as_str()
        );
    }
}
