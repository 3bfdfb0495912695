//! The streamed Response: the relay's chat SSE re-emitted as Responses events as soon as
//! each arrives (`api/reencode.rs` drives it). The final Response is stored (when asked)
//! before `response.completed` is sent, so a client that continues from it at once finds
//! it. A client that goes away mid-stream is billed for what was produced (the relay
//! settles the abandoned stream); that much is stored too, as an `incomplete` Response,
//! so `previous_response_id` on it continues from what the client saw.

use bytes::Bytes;
use futures_util::Stream;

use super::Keeper;
use crate::api::reencode::{Reencode, reencoded};
use crate::protocol::responses::{Frame, ResponseEvent, ResponsesStream};

struct Reencoding {
    translator: ResponsesStream,
    keeper: Option<Keeper>,
}

impl Reencode for Reencoding {
    fn on_data(&mut self, data: &[u8]) -> Vec<Bytes> {
        sse(self.translator.on_data(data))
    }

    fn fail(&mut self, message: &str) -> Vec<Bytes> {
        sse(self.translator.fail(message))
    }

    fn on_end(&mut self) -> Vec<Bytes> {
        sse(self.translator.on_end())
    }

    /// Stores the Response once it is complete (or incomplete), before its final event
    /// leaves; a failed one is not kept.
    async fn after_read(&mut self) {
        let finished = self
            .translator
            .outcome()
            .filter(|r| r["status"] != "failed");
        if let Some(response) = finished
            && let Some(keeper) = self.keeper.take()
        {
            keeper.keep(response).await;
        }
    }
}

impl Drop for Reencoding {
    /// The stream is dropped before its end only when the client went away.
    fn drop(&mut self) {
        if let Some(keeper) = self.keeper.take()
            && let Some(response) = self.translator.interrupted()
        {
            keeper.keep_detached(response);
        }
    }
}

fn sse(events: Vec<ResponseEvent>) -> Vec<Bytes> {
    events.iter().map(ResponseEvent::to_sse).collect()
}

/// Responses SSE from a chat SSE stream.
pub fn responses_sse<S>(
    upstream: S,
    frame: Frame,
    keeper: Option<Keeper>,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin + 'static,
{
    let mut translator = ResponsesStream::new(frame);
    let first = sse(translator.start());
    reencoded(upstream, Reencoding { translator, keeper }, first)
}
