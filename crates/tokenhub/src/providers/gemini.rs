//! Gemini upstreams (`type = "gemini"`): the OpenAI body the relay prepared is translated
//! to a `generateContent` request, sent with the key in `x-goog-api-key` (never in the
//! URL, where it could end up in logs), and the answer is translated back into OpenAI
//! bytes (a `chat.completion`, or `chat.completion.chunk` SSE ending in a usage chunk and
//! `[DONE]`), so the relay meters it like any OpenAI upstream. The translations live in
//! `protocol::gemini`; this file only does the HTTP.

use bytes::Bytes;

use super::http::HttpClient;
use super::transport::{self, EventTranslator, TranslatedStream};
use super::{ByteStream, Deadlines, FailureKind, UpstreamFailure, UpstreamResponse};
use crate::catalog::Channel;
use crate::protocol::gemini::{
    StreamTranslator, TranslateError, channel_cannot_serve, rejects_the_key, request_from_openai,
    response_to_openai,
};
use crate::protocol::sse::SseEvent;

/// Used when a channel leaves `base_url` empty.
pub const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com";

/// `{base}/v1beta/models/{model}:generateContent`, or `:streamGenerateContent?alt=sse`
/// (without `alt=sse` Gemini streams one JSON array instead of SSE). A base that already
/// ends in `/v1beta` is not doubled, and a `models/` prefix on the model is not repeated.
pub fn endpoint(base_url: &str, model: &str, stream: bool) -> String {
    let base = base_url.trim().trim_end_matches('/');
    let base = if base.is_empty() {
        DEFAULT_BASE_URL
    } else {
        base
    };
    let version = if base.ends_with("/v1beta") {
        ""
    } else {
        "/v1beta"
    };
    let model = escape_segment(model.strip_prefix("models/").unwrap_or(model));
    let method = if stream {
        "streamGenerateContent?alt=sse"
    } else {
        "generateContent"
    };
    format!("{base}{version}/models/{model}:{method}")
}

/// Percent-encodes everything but RFC 3986's unreserved characters, so a model name
/// cannot change the path or add a query.
fn escape_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

pub async fn send_chat(
    client: &HttpClient,
    channel: &Channel,
    key: Option<&str>,
    body: Bytes,
    deadlines: Deadlines,
) -> Result<UpstreamResponse, UpstreamFailure> {
    // A request Gemini cannot serve is the client's mistake: a 400, never retried.
    let translated = request_from_openai(&body)
        .map_err(|e| UpstreamFailure::new(FailureKind::Status(400), e.message))?;
    let url = channel.urls.parse(endpoint(
        &channel.base_url,
        &translated.model,
        translated.stream,
    ))?;
    let mut request = transport::json_post(url);
    if let Some(key) = key {
        request = request.header("x-goog-api-key", key);
    }
    let response = transport::send(
        client,
        request,
        translated.body.into(),
        deadlines.first_byte,
    )
    .await?;
    // `{"error":{"code","message","status"}}`; the HTTP status decides the retry.
    let answered = transport::success_body(response, |status, body| match status {
        400 if rejects_the_key(body) => 401,
        400 if channel_cannot_serve(body) => 503,
        _ => status,
    })
    .await?;
    let upstream = transport::body_stream(answered);
    let body: ByteStream = if translated.stream {
        Box::pin(TranslatedStream::new(
            upstream,
            StreamTranslator::new(transport::unix_now(), &translated.model),
        ))
    } else {
        // Lazy: the relay's total deadline applies while this is read.
        let model = translated.model;
        Box::pin(futures_util::stream::once(async move {
            let answer = transport::read_answer(upstream).await?;
            let completion = response_to_openai(&answer, transport::unix_now(), &model)
                .map_err(protocol_failure)?;
            Ok(Bytes::from(completion.to_string()))
        }))
    };
    Ok(UpstreamResponse { body })
}

fn protocol_failure(error: TranslateError) -> UpstreamFailure {
    UpstreamFailure::new(FailureKind::Protocol, error.message)
}

/// Gemini has no end marker: `finish` is where `[DONE]` (and usage) come from.
impl EventTranslator for StreamTranslator {
    fn on_event(&mut self, event: &SseEvent) -> Result<Vec<String>, UpstreamFailure> {
        StreamTranslator::on_event(self, event).map_err(protocol_failure)
    }

    fn finish(&mut self) -> Vec<String> {
        StreamTranslator::finish(self)
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
    fn builds_endpoints_without_doubling_the_version() {
        assert_eq!(
            endpoint("", "gemini-2.5-flash", false),
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
        );
        assert_eq!(
            endpoint(
                "https://proxy.example/g/v1beta/",
                "models/gemini-2.5-pro",
                true
            ),
            "https://proxy.example/g/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            endpoint("http://h", "a/b?key=x", false),
            "http://h/v1beta/models/a%2Fb%3Fkey%3Dx:generateContent"
        );
    }

    fn stream_of(pieces: &[&'static str]) -> ByteStream {
        let items: Vec<Result<Bytes, UpstreamFailure>> = pieces
            .iter()
            .map(|p| Ok(Bytes::from_static(p.as_bytes())))
            .collect();
        Box::pin(futures_util::stream::iter(items))
    }

    async fn collect(pieces: &[&'static str]) -> Vec<Result<String, UpstreamFailure>> {
        TranslatedStream::new(stream_of(pieces), StreamTranslator::new(5, "g"))
            .map(|item| item.map(|b| String::from_utf8_lossy(&b).into_owned()))
            .collect()
            .await
    }

    #[tokio::test]
    async fn the_end_of_a_finished_stream_brings_usage_and_done() {
        let items = collect(&[
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}]}}]}\r\n\r\ndata: {\"candidates\":[{\"content\":{\"parts\":[{\"te",
            "xt\":\"!\"}]},\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":3,\"candidatesTokenCount\":2}}",
        ])
        .await;
        let data: Vec<String> = items.into_iter().map(Result::unwrap).collect();
        assert_eq!(data.len(), 6, "{data:?}");
        assert!(
            data[1].contains(r#""delta":{"content":"Hi"}"#),
            "{}",
            data[1]
        );
        assert!(data[3].contains(r#""finish_reason":"stop""#), "{}", data[3]);
        assert!(data[4].contains(r#""prompt_tokens":3"#), "{}", data[4]);
        assert_eq!(data[5], "data: [DONE]\n\n");
    }

    #[tokio::test]
    async fn a_stream_cut_short_ends_without_done() {
        let items = collect(&[
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}]}}]}\n\n",
        ])
        .await;
        assert_eq!(items.len(), 2);
        assert!(
            items
                .iter()
                .all(|i| !i.as_ref().unwrap().contains("[DONE]"))
        );
    }

    #[tokio::test]
    async fn unreadable_events_end_the_stream_with_a_protocol_failure() {
        let items = collect(&["data: {oops\n\n"]).await;
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].clone().unwrap_err().kind, FailureKind::Protocol);
    }
}
