//! The streamed answer: the relay's OpenAI SSE bytes, decoded event by event and
//! re-emitted as Anthropic events as soon as each arrives.

use std::collections::VecDeque;

use bytes::Bytes;
use futures_util::{Stream, StreamExt, stream};

use crate::protocol::anthropic::inbound::{AnthropicEvent, InboundStream};
use crate::protocol::sse::SseDecoder;

struct Translating<S> {
    upstream: S,
    decoder: SseDecoder,
    translator: InboundStream,
    pending: VecDeque<Bytes>,
    ended: bool,
}

/// Anthropic SSE from an OpenAI SSE stream. The upstream is read to its end even after
/// `message_stop`: the relay settles the request when its stream ends, and dropping it
/// early would record a client disconnect.
pub fn anthropic_sse<S>(
    upstream: S,
    input_tokens: u64,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin + 'static,
{
    let state = Translating {
        upstream,
        decoder: SseDecoder::default(),
        translator: InboundStream::new().with_input_tokens(input_tokens),
        pending: VecDeque::new(),
        ended: false,
    };
    stream::unfold(state, |mut state| async move {
        loop {
            if let Some(bytes) = state.pending.pop_front() {
                return Some((Ok(bytes), state));
            }
            if state.ended {
                return None;
            }
            state.pull().await;
        }
    })
}

impl<S> Translating<S>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
{
    /// Reads one piece of the upstream and queues the events it completes.
    async fn pull(&mut self) {
        match self.upstream.next().await {
            Some(Ok(bytes)) => {
                self.decoder.push(&bytes);
                loop {
                    match self.decoder.next_event() {
                        Ok(Some(event)) => {
                            if let Some(data) = &event.data {
                                let events = self.translator.on_data(data);
                                self.queue(events);
                            }
                        }
                        Ok(None) => break,
                        Err(too_large) => {
                            let events = self.translator.fail(&too_large.to_string());
                            self.queue(events);
                            self.ended = true;
                            break;
                        }
                    }
                }
            }
            Some(Err(error)) => {
                let events = self.translator.fail(&error.to_string());
                self.queue(events);
                self.ended = true;
            }
            None => {
                if let Some(data) = self.decoder.finish().and_then(|event| event.data) {
                    let events = self.translator.on_data(&data);
                    self.queue(events);
                }
                let events = self.translator.on_end();
                self.queue(events);
                self.ended = true;
            }
        }
    }

    fn queue(&mut self, events: Vec<AnthropicEvent>) {
        self.pending
            .extend(events.iter().map(AnthropicEvent::to_sse));
    }
}
