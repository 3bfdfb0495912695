//! Anthropic Messages upstreams (`type = "anthropic"`): the OpenAI body the relay prepared
//! is translated to a Messages request, and the answer is translated back into OpenAI
//! bytes (a `chat.completion`, or `chat.completion.chunk` SSE ending in `[DONE]`), so the
//! relay meters it like any OpenAI upstream. The translations live in
//! `protocol::anthropic`; this file only does the HTTP.

use bytes::Bytes;

use super::http::HttpClient;
use super::transport::{self, EventTranslator, TranslatedStream};
use super::{ByteStream, Deadlines, FailureKind, UpstreamFailure, UpstreamResponse};
use crate::catalog::Channel;
use crate::protocol::anthropic::structured::answer_from_tool;
use crate::protocol::anthropic::{
    RequestOptions, StreamTranslator, TranslateError, request_from_openai, response_to_openai,
};
use crate::protocol::sse::SseEvent;

/// Used when a channel leaves `base_url` empty.
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// The Messages API version this adapter speaks.
pub const API_VERSION: &str = "2023-06-01";

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
    client: &HttpClient,
    channel: &Channel,
    key: Option<&str>,
    body: Bytes,
    deadlines: Deadlines,
) -> Result<UpstreamResponse, UpstreamFailure> {
    // A request Claude cannot serve is the client's mistake: a 400, never retried.
    let translated = request_from_openai(&body, &RequestOptions::default())
        .map_err(|e| UpstreamFailure::new(FailureKind::Status(400), e.message))?;
    let mut request = transport::json_post(channel.urls.parse(endpoint(&channel.base_url))?)
        .header("anthropic-version", API_VERSION);
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    let response = transport::send(
        client,
        request,
        translated.body.into(),
        deadlines.first_byte,
    )
    .await?;
    // `{"type":"error","error":{"type","message"}}`; 529 (overloaded) is retryable like
    // every status that is not the client's mistake.
    let upstream = transport::body_stream(transport::success_body(response, |s, _| s).await?);
    let body: ByteStream = if translated.stream {
        let translator = StreamTranslator::new(transport::unix_now())
            .answering_with_tool(translated.answer_tool);
        Box::pin(TranslatedStream::new(upstream, translator))
    } else {
        // Lazy: the relay's total deadline applies while this is read.
        Box::pin(futures_util::stream::once(async move {
            let answer = transport::read_answer(upstream).await?;
            let mut completion =
                response_to_openai(&answer, transport::unix_now()).map_err(protocol_failure)?;
            if let Some(tool) = &translated.answer_tool {
                answer_from_tool(&mut completion, tool);
            }
            Ok(Bytes::from(completion.to_string()))
        }))
    };
    Ok(UpstreamResponse { body })
}

fn protocol_failure(error: TranslateError) -> UpstreamFailure {
    UpstreamFailure::new(FailureKind::Protocol, error.message)
}

impl EventTranslator for StreamTranslator {
    fn on_event(&mut self, event: &SseEvent) -> Result<Vec<String>, UpstreamFailure> {
        StreamTranslator::on_event(self, event).map_err(protocol_failure)
    }

    fn is_finished(&self) -> bool {
        StreamTranslator::is_finished(self)
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

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

    async fn collect(
        stream: TranslatedStream<StreamTranslator>,
    ) -> Vec<Result<String, UpstreamFailure>> {
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
        let items = collect(TranslatedStream::new(upstream, StreamTranslator::new(5))).await;
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
        let items = collect(TranslatedStream::new(upstream, StreamTranslator::new(5))).await;
        assert_eq!(items.len(), 1);
        let failure = items[0].clone().unwrap_err();
        assert_eq!(failure.kind, FailureKind::Protocol);
    }

    #[tokio::test]
    async fn a_stream_cut_short_ends_without_done() {
        let upstream = stream_of(&[
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\"}}\n\n",
        ]);
        let items = collect(TranslatedStream::new(upstream, StreamTranslator::new(5))).await;
        assert_eq!(items.len(), 1);
        assert!(!items[0].as_ref().unwrap().contains("[DONE]"));
    }
}
