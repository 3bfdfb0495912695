//! A native Responses stream (`Operation::Responses`): OpenAI's events pass to the client
//! byte for byte; the meter reads usage from `response.completed` (or `incomplete`,
//! `failed`), text deltas for a local count when none arrives, and failures for the
//! record. Only an event that carries a channel key is rewritten (redacted).

use std::time::Instant;

use bytes::Bytes;

use super::MeteredStream;
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
                self.native.final_event = Some(data);
                self.saw_finish = true;
                self.saw_done = true;
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
