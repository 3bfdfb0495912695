//! Provider adapters: how a request reaches one channel's upstream and how its answer
//! comes back as bytes. Adapters see channels and bytes, never the server, the database
//! or the caller's identity.

pub mod anthropic;
pub mod demo;
pub mod dialect;
pub mod gemini;
pub mod http;
pub mod openai_compat;
pub mod presets;
pub mod transport;
pub mod urls;

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;

use crate::catalog::{Channel, ChannelKind};
use crate::protocol::openai::operation::Operation;

pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, UpstreamFailure>> + Send>>;

/// An upstream's answer whose status was 2xx; the body is read as it arrives.
pub struct UpstreamResponse {
    pub body: ByteStream,
}

/// What went wrong talking to an upstream, and whether another channel may be tried.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct UpstreamFailure {
    pub kind: FailureKind,
    pub message: String,
    /// The upstream's `Retry-After`, when it gave one.
    pub retry_after: Option<Duration>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// No connection could be made.
    Connect,
    /// No answer (or no first event) within the deadline.
    Timeout,
    /// The upstream answered with this non-2xx status.
    Status(u16),
    /// The answer could not be understood.
    Protocol,
    /// The connection broke while the body was being read.
    Broken,
}

impl UpstreamFailure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> UpstreamFailure {
        UpstreamFailure {
            kind,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Whether trying another channel could succeed. Client mistakes (400, 413, 422) would
    /// fail the same way anywhere; everything else is about this channel or this moment.
    pub fn retryable(&self) -> bool {
        match self.kind {
            FailureKind::Status(status) => !matches!(status, 400 | 413 | 422),
            FailureKind::Connect
            | FailureKind::Timeout
            | FailureKind::Protocol
            | FailureKind::Broken => true,
        }
    }

    /// Whether the failure is about the key used rather than the upstream: rejected
    /// (401/403), out of credit (402) or rate-limited (429). Another key of the same
    /// channel may succeed; after any other failure the next channel is tried instead,
    /// since the channel's other keys reach the same failing host.
    pub fn key_scoped(&self) -> bool {
        matches!(self.kind, FailureKind::Status(401 | 402 | 403 | 429))
    }
}

/// Deadlines shared by all adapters.
#[derive(Clone, Copy, Debug)]
pub struct Deadlines {
    /// Until the response headers arrive (and, for streams, the first data event).
    pub first_byte: Duration,
}

/// Sends an OpenAI-format body of `operation` to the channel, authenticated with `key`
/// (one of the channel's keys, chosen by the relay). Routing only picks channels whose
/// kind supports the operation (`ChannelKind::supports`).
pub async fn send(
    client: &http::HttpClient,
    channel: &Channel,
    key: Option<&str>,
    operation: Operation,
    body: Bytes,
    deadlines: Deadlines,
) -> Result<UpstreamResponse, UpstreamFailure> {
    match channel.kind {
        ChannelKind::OpenAi(dialect) => {
            openai_compat::send(
                client,
                channel,
                key,
                dialect,
                operation.path(),
                body,
                deadlines,
            )
            .await
        }
        ChannelKind::Anthropic => anthropic::send_chat(client, channel, key, body, deadlines).await,
        ChannelKind::Gemini => gemini::send_chat(client, channel, key, body, deadlines).await,
        ChannelKind::Demo => demo::send_chat(&body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_mistakes_are_not_retried() {
        let status = |s| UpstreamFailure::new(FailureKind::Status(s), "x");
        assert!(!status(400).retryable());
        assert!(!status(422).retryable());
        assert!(status(429).retryable());
        assert!(
            status(401).retryable(),
            "a bad channel key is the channel's problem"
        );
        assert!(status(503).retryable());
        assert!(UpstreamFailure::new(FailureKind::Connect, "x").retryable());
        assert!(status(401).key_scoped() && status(429).key_scoped());
        assert!(!status(503).key_scoped() && !status(400).key_scoped());
        assert!(!UpstreamFailure::new(FailureKind::Timeout, "x").key_scoped());
    }
}
