//! Anthropic Messages upstreams (`type = "anthropic"`): the OpenAI body the relay prepared
//! is translated to a Messages request, and the answer is translated back into OpenAI
//! bytes (a `chat.completion`, or `chat.completion.chunk` SSE ending in `[DONE]`), so the
//! relay meters it like any OpenAI upstream. The translations live in
//! `protocol::anthropic`; this file only does the HTTP.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::transport;
use super::{ByteStream, Deadlines, FailureKind, UpstreamFailure, UpstreamResponse};
use crate::catalog::Channel;
use crate::protocol::anthropic::{
    RequestOptions, StreamTranslator, TranslateError, request_from_openai, response_to_openai,
};
use crate::protocol::openai::error::upstream_error_message;
use crate::protocol::sse::{SseDecoder, SseEvent};

/// Used when a channel leaves `base_url` empty.
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// The Messages API version this adapter speaks.
pub const API_VERSION: &str = "2023-06-01";
/// An upstream error body is read up to this size for its message.
/// A non-streaming answer is translated whole, so it is read whole, up to this size.
const ANSWER_LIMIT: usize = 32 * 1024 * 1024;

/// `{base}/v1/messages`, without doubling a `/v1` the base already ends with.
pub fn endpoint(base_url: &str) -> String {
    let base = base_url.trim().trim_end_matches('/');
    let base = if base.is_empty() {
        DEFAULT_BASE_URL
    } else {
        base
    };
    if base.ends_with("/v1") {
        format!("{base}/messages")
    } else {
        format!("{base}/v1/messages")
    }
}

pub async fn send_chat(
    client: &reqwest::Client,
    channel: &Channel,
    body: Bytes,
    deadlines: Deadlines,
) -> Result<UpstreamResponse, UpstreamFailure> {
    // A request Claude cannot serve is the client's mistake: a 400, never retried.
    let translated = request_from_openai(&body, &RequestOptions::default())
        .map_err(|e| UpstreamFailure::new(FailureKind::Status(400), e.message))?;
    let mut request = client
        .post(endpoint(&channel.base_url))
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("anthropic-version", API_VERSION)
        .body(translated.body);
    if let Some(key) = &channel.api_key {
        request = request.header("x-api-key", key);
    }
    let response = tokio::time::timeout(deadlines.first_byte, request.send())
        .await
        .map_err(|_| UpstreamFailure::new(FailureKind::Timeout, "upstream did not answer in time"))?
        .map_err(|e| transport::send_failure(&e))?;
    let status = response.status();
    if !status.is_success() {
        // `{"type":"error","error":{"type","message"}}`; 529 (overloaded) is retryable
        // like every status that is not the client's mistake.
        let code = status.as_u16();
        let body = transport::read_error_body(response).await;
        let message = upstream_error_message(&body)
            .unwrap_or_else(|| format!("upstream returned HTTP {code}"));
        return Err(UpstreamFailure::new(FailureKind::Status(code), message));
    }
    let upstream: ByteStream = Box::pin(
        response
            .bytes_stream()
            .map(|chunk| chunk.map_err(|e| transport::body_failure(&e))),
    );
    let body: ByteStream = if translated.stream {
        Box::pin(TranslatedStream::new(upstream, transport::unix_now()))
    } else {
        // Lazy: the relay's total deadline and size limit apply while this is read.
        Box::pin(futures_util::stream::once(translate_answer(upstream)))
    };
    Ok(UpstreamResponse { body })
}

/// Reads a whole Messages answer and returns it as a `chat.completion` body.
async fn translate_answer(mut upstream: ByteStream) -> Result<Bytes, UpstreamFailure> {
    let mut answer = Vec::new();
    while let Some(chunk) = upstream.next().await {
        answer.extend_from_slice(&chunk?);
        if answer.len() > ANSWER_LIMIT {
            return Err(UpstreamFailure::new(
                FailureKind::Protocol,
                format!("upstream answer exceeded {ANSWER_LIMIT} bytes"),
            ));
        }
    }
    let completion =
        response_to_openai(&answer, transport::unix_now()).map_err(protocol_failure)?;
    Ok(Bytes::from(completion.to_string()))
}

fn protocol_failure(error: TranslateError) -> UpstreamFailure {
    UpstreamFailure::new(FailureKind::Protocol, error.message)
}

/// The upstream's Messages SSE as OpenAI SSE, one translated event per item.
struct TranslatedStream {
    upstream: ByteStream,
    decoder: SseDecoder,
    translator: StreamTranslator,
    ready: VecDeque<Bytes>,
    ended: bool,
}

impl TranslatedStream {
    fn new(upstream: ByteStream, created: i64) -> TranslatedStream {
        TranslatedStream {
            upstream,
            decoder: SseDecoder::default(),
            translator: StreamTranslator::new(created),
            ready: VecDeque::new(),
            ended: false,
        }
    }

    fn translate(&mut self, event: &SseEvent) -> Result<(), UpstreamFailure> {
        for data in self.translator.on_event(event).map_err(protocol_failure)? {
            self.ready.push_back(SseEvent::data_bytes(data.as_bytes()));
        }
        Ok(())
    }

    fn absorb(&mut self, bytes: &[u8]) -> Result<(), UpstreamFailure> {
        self.decoder.push(bytes);
        while let Some(event) = self
            .decoder
            .next_event()
            .map_err(|e| UpstreamFailure::new(FailureKind::Protocol, e.to_string()))?
        {
            self.translate(&event)?;
        }
        Ok(())
    }
}

impl Stream for TranslatedStream {
    type Item = Result<Bytes, UpstreamFailure>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(bytes) = this.ready.pop_front() {
                return Poll::Ready(Some(Ok(bytes)));
            }
            // After `[DONE]` or an error event nothing more is owed; stop reading.
            if this.ended || this.translator.is_finished() {
                return Poll::Ready(None);
            }
            let step = match this.upstream.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(bytes))) => this.absorb(&bytes),
                Poll::Ready(Some(Err(failure))) => Err(failure),
                Poll::Ready(None) => {
                    // The relay tells a cut-off answer from a finished one by `[DONE]`.
                    this.ended = true;
                    match this.decoder.finish() {
                        Some(event) => this.translate(&event),
                        None => Ok(()),
                    }
                }
            };
            if let Err(failure) = step {
                this.ended = true;
                this.ready.clear();
                return Poll::Ready(Some(Err(failure)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_base_urls_without_doubling_v1() {
        assert_eq!(endpoint(""), "https://api.anthropic.com/v1/messages");
        assert_eq!(
            endpoint("https://api.anthropic.com"),
            "https://api.anthropic.com/v1/messages"
        );
        assert_eq!(
            endpoint("https://api.anthropic.com/v1/"),
            "https://api.anthropic.com/v1/messages"
        );
        assert_eq!(
            endpoint("https://proxy.example/anthropic"),
            "https://proxy.example/anthropic/v1/messages"
        );
    }

    fn stream_of(pieces: &[&'static str]) -> ByteStream {
        let items: Vec<Result<Bytes, UpstreamFailure>> = pieces
            .iter()
            .map(|p| Ok(Bytes::from_static(p.as_bytes())))
            .collect();
        Box::pin(futures_util::stream::iter(items))
    }

    async fn collect(stream: TranslatedStream) -> Vec<Result<String, UpstreamFailure>> {
        stream
            .map(|item| item.map(|b| String::from_utf8_lossy(&b).into_owned()))
            .collect()
            .await
    }

    #[tokio::test]
    async fn a_stream_ends_at_done_and_reassembles_split_events() {
        let upstream = stream_of(&[
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":3}}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,",
            "\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
            "event: ping\ndata: {\"type\":\"ping\"}\n\n",
        ]);
        let items = collect(TranslatedStream::new(upstream, 5)).await;
        let data: Vec<String> = items.into_iter().map(Result::unwrap).collect();
        assert_eq!(data.len(), 4, "{data:?}");
        assert!(
            data[1].contains(r#""delta":{"content":"Hi"}"#),
            "{}",
            data[1]
        );
        assert!(
            data[2].contains(r#""choices":[]"#),
            "usage chunk: {}",
            data[2]
        );
        assert_eq!(data[3], "data: [DONE]\n\n");
    }

    #[tokio::test]
    async fn unreadable_events_end_the_stream_with_a_protocol_failure() {
        let upstream = stream_of(&["event: message_start\ndata: {oops\n\n"]);
        let items = collect(TranslatedStream::new(upstream, 5)).await;
        assert_eq!(items.len(), 1);
        let failure = items[0].clone().unwrap_err();
        assert_eq!(failure.kind, FailureKind::Protocol);
    }

    #[tokio::test]
    async fn a_stream_cut_short_ends_without_done() {
        let upstream = stream_of(&[
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\"}}\n\n",
        ]);
        let items = collect(TranslatedStream::new(upstream, 5)).await;
        assert_eq!(items.len(), 1);
        assert!(!items[0].as_ref().unwrap().contains("[DONE]"));
    }
}
