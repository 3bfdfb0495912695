//! The streamed answer: the relay's OpenAI SSE re-emitted as Anthropic events as soon as
//! each arrives (`api/reencode.rs` drives it).

use bytes::Bytes;
use futures_util::Stream;

use crate::api::reencode::{Reencode, reencoded};
use crate::protocol::anthropic::inbound::{AnthropicEvent, InboundStream};

impl Reencode for InboundStream {
    fn on_data(&mut self, data: &[u8]) -> Vec<Bytes> {
        sse(InboundStream::on_data(self, data))
    }

    fn fail(&mut self, message: &str) -> Vec<Bytes> {
        sse(InboundStream::fail(self, message))
    }

    fn on_end(&mut self) -> Vec<Bytes> {
        sse(InboundStream::on_end(self))
    }
}

fn sse(events: Vec<AnthropicEvent>) -> Vec<Bytes> {
    events.iter().map(AnthropicEvent::to_sse).collect()
}

/// Anthropic SSE from an OpenAI SSE stream.
pub fn anthropic_sse<S>(
    upstream: S,
    input_tokens: u64,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin + 'static,
{
    let translator = InboundStream::new().with_input_tokens(input_tokens);
    reencoded(upstream, translator, Vec::new())
}
