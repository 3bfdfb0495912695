//! What every HTTP adapter shares: sending within the first-byte deadline, reading an
//! error body within bounds, and turning transport errors into `UpstreamFailure`s with
//! their root cause. Channel keys travel in headers, never in URLs, so a root cause never
//! shows a credential.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http_body_util::{BodyDataStream, BodyExt, Full};
use hyper::body::Incoming;

use super::http::{HttpClient, SendError, UpstreamRequest, root_cause};
use super::urls::UpstreamUrl;
use super::{ByteStream, FailureKind, UpstreamFailure};
use crate::protocol::openai::error::upstream_error_message;
use crate::protocol::sse::{SseDecoder, SseEvent};

/// An upstream error body is read up to this size for its message.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// A JSON `POST` to an upstream, for the adapter to add its authentication header to.
pub fn json_post(url: UpstreamUrl) -> http::request::Builder {
    let request = http::Request::post(url.uri);
    match url.host {
        Some(host) => request.header(http::header::HOST, host),
        None => request,
    }
    .header(http::header::CONTENT_TYPE, "application/json")
}

/// Sends a request built by an adapter and waits at most `first_byte` for the response
/// headers, whatever their status.
pub async fn send(
    client: &HttpClient,
    request: http::request::Builder,
    body: Bytes,
    first_byte: Duration,
) -> Result<http::Response<Incoming>, UpstreamFailure> {
    let request: UpstreamRequest = request.body(Full::new(body)).map_err(|e| {
        // e.g. a channel key with a line break in it; the message never shows the value.
        UpstreamFailure::new(
            FailureKind::Broken,
            format!("cannot build the upstream request: {e}"),
        )
    })?;
    tokio::time::timeout(first_byte, client.send(request))
        .await
        .map_err(|_| UpstreamFailure::new(FailureKind::Timeout, "upstream did not answer in time"))?
        .map_err(|e| send_failure(&e))
}

/// A 2xx answer's body, as it arrives.
pub fn body_stream(body: Incoming) -> ByteStream {
    Box::pin(BodyDataStream::new(body).map(|chunk| chunk.map_err(|e| body_failure(&e))))
}

/// A 2xx answer's body. Any other status becomes the failure it means, with the
/// upstream's own message and `Retry-After`; `effective_status` lets an adapter correct
/// the status from the error body (a vendor's 400 that means a rejected key, …).
pub async fn success_body(
    response: http::Response<Incoming>,
    effective_status: impl FnOnce(u16, &[u8]) -> u16,
) -> Result<Incoming, UpstreamFailure> {
    let status = response.status();
    if status.is_success() {
        return Ok(response.into_body());
    }
    let retry_after = retry_after(response.headers());
    let body = read_error_body(response.into_body()).await;
    let code = effective_status(status.as_u16(), &body);
    let message =
        upstream_error_message(&body).unwrap_or_else(|| format!("upstream returned HTTP {code}"));
    Err(UpstreamFailure {
        retry_after,
        ..UpstreamFailure::new(FailureKind::Status(code), message)
    })
}

/// `retry-after-ms` (OpenAI) or `retry-after` in seconds; HTTP dates are rare here and ignored.
fn retry_after(headers: &http::HeaderMap) -> Option<std::time::Duration> {
    let number = |name: &str| {
        headers
            .get(name)?
            .to_str()
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    if let Some(ms) = number("retry-after-ms") {
        return Some(std::time::Duration::from_secs_f64(ms / 1000.0));
    }
    number("retry-after").map(|secs| std::time::Duration::from_secs_f64(secs.min(86_400.0)))
}

async fn read_error_body(mut response: Incoming) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(Ok(frame)) = response.frame().await {
        let Ok(chunk) = frame.into_data() else {
            continue; // trailers
        };
        body.extend_from_slice(&chunk);
        if body.len() >= ERROR_BODY_LIMIT {
            body.truncate(ERROR_BODY_LIMIT);
            break;
        }
    }
    body
}

/// A request that got no answer: connect failure, timeout, or a connection lost early.
pub fn send_failure(error: &SendError) -> UpstreamFailure {
    let kind = if error.is_timeout() {
        FailureKind::Timeout
    } else if error.is_connect() {
        FailureKind::Connect
    } else {
        FailureKind::Broken
    };
    UpstreamFailure::new(kind, format!("cannot reach upstream: {error}"))
}

/// A body that broke while it was being read.
pub fn body_failure(error: &hyper::Error) -> UpstreamFailure {
    UpstreamFailure::new(
        FailureKind::Broken,
        format!("upstream connection broke: {}", root_cause(error)),
    )
}

/// Seconds since the Unix epoch, for the `created` of translated answers.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Largest whole (non-streamed) answer a translating adapter reads.
const ANSWER_LIMIT: usize = 32 * 1024 * 1024;

/// Reads a whole upstream answer, refusing one larger than `ANSWER_LIMIT`.
pub async fn read_answer(mut upstream: ByteStream) -> Result<Vec<u8>, UpstreamFailure> {
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
    Ok(answer)
}

/// A stateful translator from one protocol's SSE events to OpenAI chunk payloads.
pub trait EventTranslator: Send + Unpin + 'static {
    /// The OpenAI `data:` payloads this upstream event becomes (maybe none).
    fn on_event(&mut self, event: &SseEvent) -> Result<Vec<String>, UpstreamFailure>;
    /// Payloads owed when the upstream ends (for protocols without an end marker).
    fn finish(&mut self) -> Vec<String> {
        Vec::new()
    }
    /// True after `[DONE]` or an error: nothing more is owed, stop reading.
    fn is_finished(&self) -> bool;
}

/// An upstream SSE stream in another protocol, as OpenAI SSE: one item per event.
pub struct TranslatedStream<T> {
    upstream: ByteStream,
    decoder: SseDecoder,
    translator: T,
    ready: VecDeque<Bytes>,
    ended: bool,
}

impl<T: EventTranslator> TranslatedStream<T> {
    pub fn new(upstream: ByteStream, translator: T) -> Self {
        TranslatedStream {
            upstream,
            decoder: SseDecoder::default(),
            translator,
            ready: VecDeque::new(),
            ended: false,
        }
    }

    fn queue(&mut self, payloads: Vec<String>) {
        for data in payloads {
            self.ready.push_back(SseEvent::data_bytes(data.as_bytes()));
        }
    }

    fn translate(&mut self, event: &SseEvent) -> Result<(), UpstreamFailure> {
        let payloads = self.translator.on_event(event)?;
        self.queue(payloads);
        Ok(())
    }

    fn absorb(&mut self, bytes: Bytes) -> Result<(), UpstreamFailure> {
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

    /// The upstream ended. Without `[DONE]` the relay treats the answer as cut off, so
    /// only the translator decides whether one is owed.
    fn end(&mut self) -> Result<(), UpstreamFailure> {
        self.ended = true;
        if let Some(event) = self.decoder.finish() {
            self.translate(&event)?;
        }
        let payloads = self.translator.finish();
        self.queue(payloads);
        Ok(())
    }
}

impl<T: EventTranslator> Stream for TranslatedStream<T> {
    type Item = Result<Bytes, UpstreamFailure>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(bytes) = this.ready.pop_front() {
                return Poll::Ready(Some(Ok(bytes)));
            }
            if this.ended || this.translator.is_finished() {
                return Poll::Ready(None);
            }
            let step = match this.upstream.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(bytes))) => this.absorb(bytes),
                Poll::Ready(Some(Err(failure))) => Err(failure),
                Poll::Ready(None) => this.end(),
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
    use super::retry_after;

    #[test]
    fn reads_retry_after_in_either_spelling() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert("retry-after", "7".parse().unwrap());
        assert_eq!(
            retry_after(&headers),
            Some(std::time::Duration::from_secs(7))
        );
        headers.insert("retry-after-ms", "250".parse().unwrap());
        assert_eq!(
            retry_after(&headers),
            Some(std::time::Duration::from_millis(250))
        );
        headers.insert("retry-after-ms", "soon".parse().unwrap());
        headers.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
