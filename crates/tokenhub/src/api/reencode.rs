//! One driver for the surfaces that re-encode the relay's chat SSE in another protocol
//! (`/v1/messages`, `/v1/responses`): it decodes the relay's events as they arrive, hands
//! each `data:` payload to the surface's translator and sends what it produces at once.
//!
//! The relay's stream is read to its end even after the translator's last event: the
//! relay settles the request when its stream ends, and dropping it early would record a
//! client disconnect. A stream that breaks is the translator's to end (`fail`).

use std::collections::VecDeque;
use std::future::Future;

use bytes::Bytes;
use futures_util::{Stream, StreamExt, stream};

use crate::protocol::sse::SseDecoder;

/// A surface's translator from chat chunks to its own SSE events (already encoded).
pub trait Reencode: Send + 'static {
    /// The events for one chat `data:` payload (a chunk, or `[DONE]`).
    fn on_data(&mut self, data: &[u8]) -> Vec<Bytes>;
    /// The relay's stream broke: the events that end the answer as failed.
    fn fail(&mut self, message: &str) -> Vec<Bytes>;
    /// The relay's stream ended after everything it sent was given to `on_data`.
    fn on_end(&mut self) -> Vec<Bytes>;
    /// Runs after each read of the relay's stream, before the events it produced are
    /// sent (the Responses surface stores a finished Response here).
    fn after_read(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

struct Driver<S, R> {
    upstream: S,
    decoder: SseDecoder,
    reencoder: R,
    pending: VecDeque<Bytes>,
    ended: bool,
}

/// `first` (events sent before any chunk), then the events `reencoder` makes of the relay's
/// chat SSE `upstream`.
pub fn reencoded<S, R>(
    upstream: S,
    reencoder: R,
    first: Vec<Bytes>,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin + 'static,
    R: Reencode,
{
    let driver = Driver {
        upstream,
        decoder: SseDecoder::default(),
        reencoder,
        pending: first.into(),
        ended: false,
    };
    stream::unfold(driver, |mut driver| async move {
        loop {
            if let Some(bytes) = driver.pending.pop_front() {
                return Some((Ok(bytes), driver));
            }
            if driver.ended {
                return None;
            }
            driver.read().await;
            driver.reencoder.after_read().await;
        }
    })
}

impl<S, R> Driver<S, R>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
    R: Reencode,
{
    /// Reads one piece of the upstream and queues the events it completes.
    async fn read(&mut self) {
        match self.upstream.next().await {
            Some(Ok(bytes)) => {
                self.decoder.push(bytes);
                loop {
                    match self.decoder.next_event() {
                        Ok(Some(event)) => {
                            if let Some(data) = &event.data {
                                let events = self.reencoder.on_data(data);
                                self.pending.extend(events);
                            }
                        }
                        Ok(None) => break,
                        Err(too_large) => {
                            let events = self.reencoder.fail(&too_large.to_string());
                            self.pending.extend(events);
                            break;
                        }
                    }
                }
            }
            Some(Err(error)) => {
                let events = self.reencoder.fail(&error.to_string());
                self.pending.extend(events);
                self.ended = true;
            }
            None => {
                if let Some(data) = self.decoder.finish().and_then(|event| event.data) {
                    let events = self.reencoder.on_data(&data);
                    self.pending.extend(events);
                }
                let events = self.reencoder.on_end();
                self.pending.extend(events);
                self.ended = true;
            }
        }
    }
}
