//! The streamed Response: the relay's chat SSE bytes, decoded event by event and
//! re-emitted as Responses events as soon as each arrives. The final Response is stored
//! (when asked) before `response.completed` is sent, so a client that continues from it
//! at once finds it. A client that goes away mid-stream is billed for what was produced
//! (the relay settles the abandoned stream); that much is stored too, as an `incomplete`
//! Response, so `previous_response_id` on it continues from what the client saw.

use std::collections::VecDeque;

use bytes::Bytes;
use futures_util::{Stream, StreamExt, stream};

use super::Keeper;
use crate::protocol::responses::{Frame, ResponseEvent, ResponsesStream};
use crate::protocol::sse::SseDecoder;

struct Translating<S> {
    upstream: S,
    decoder: SseDecoder,
    translator: ResponsesStream,
    pending: VecDeque<ResponseEvent>,
    keeper: Option<Keeper>,
    ended: bool,
}

/// Responses SSE from a chat SSE stream. The upstream is read to its end even after the
/// final event: the relay settles the request when its stream ends, and dropping it early
/// would record a client disconnect.
pub fn responses_sse<S>(
    upstream: S,
    frame: Frame,
    keeper: Option<Keeper>,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin + 'static,
{
    let mut translator = ResponsesStream::new(frame);
    let state = Translating {
        upstream,
        decoder: SseDecoder::default(),
        pending: translator.start().into(),
        translator,
        keeper,
        ended: false,
    };
    stream::unfold(state, |mut state| async move {
        loop {
            if let Some(event) = state.pending.pop_front() {
                if event.kind() != "response.failed"
                    && state.pending.is_empty()
                    && let Some(response) = state.translator.outcome()
                    && let Some(keeper) = state.keeper.take()
                {
                    keeper.keep(response).await;
                }
                return Some((Ok(event.to_sse()), state));
            }
            if state.ended {
                return None;
            }
            state.pull().await;
        }
    })
}

impl<S> Drop for Translating<S> {
    /// The body is dropped before its end only when the client went away.
    fn drop(&mut self) {
        if let Some(keeper) = self.keeper.take()
            && let Some(response) = self.translator.interrupted()
        {
            keeper.keep_detached(response);
        }
    }
}

impl<S> Translating<S>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
{
    /// Reads one piece of the upstream and queues the events it completes.
    async fn pull(&mut self) {
        match self.upstream.next().await {
            Some(Ok(bytes)) => {
                self.decoder.push(bytes);
                loop {
                    match self.decoder.next_event() {
                        Ok(Some(event)) => {
                            if let Some(data) = &event.data {
                                let events = self.translator.on_data(data);
                                self.pending.extend(events);
                            }
                        }
                        Ok(None) => break,
                        Err(too_large) => {
                            let events = self.translator.fail(&too_large.to_string());
                            self.pending.extend(events);
                            break;
                        }
                    }
                }
            }
            Some(Err(error)) => {
                let events = self.translator.fail(&error.to_string());
                self.pending.extend(events);
                self.ended = true;
            }
            None => {
                if let Some(data) = self.decoder.finish().and_then(|event| event.data) {
                    let events = self.translator.on_data(&data);
                    self.pending.extend(events);
                }
                let events = self.translator.on_end();
                self.pending.extend(events);
                self.ended = true;
            }
        }
    }
}
