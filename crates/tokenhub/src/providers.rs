//! Provider adapters: how a request reaches one channel's upstream and how its answer
//! comes back as bytes. Adapters see channels and bytes, never the server, the database
//! or the caller's identity.

pub mod anthropic;
pub mod catalogue;
pub mod demo;
pub mod dialect;
pub mod gemini;
pub mod http;
pub mod openai_compat;
pub mod presets;
pub mod redact;
pub mod transport;
pub mod urls;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use crate::catalog::{Channel, ChannelKind};
use crate::protocol::openai::operation::Operation;

pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, UpstreamFailure>> + Send>>;

/// An upstream's answer whose status was 2xx; the body is read as it arrives.
pub struct UpstreamResponse {
    pub body: ByteStream,
}

/// What went wrong talking to an upstream, and whether another channel may be tried.
///
/// Its message reaches the client, the usage record, the health view and the log, and
/// may quote the upstream: it is only built through [`UpstreamFailure::new`], which
/// redacts anything shaped like a credential, and leaves the adapters through
/// [`send`], which also redacts the channel's own keys.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct UpstreamFailure {
    pub kind: FailureKind,
    message: String,
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
    pub fn new(kind: FailureKind, message: impl AsRef<str>) -> UpstreamFailure {
        UpstreamFailure {
            kind,
            message: redact::redact(message.as_ref(), []),
            retry_after: None,
        }
    }

    /// The same failure with the channel's keys taken out of its message, for an upstream
    /// that echoes its key in a shape no pattern knows.
    pub fn without_keys(mut self, channel: &Channel) -> UpstreamFailure {
        self.message = channel.redact(&self.message);
        self
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn into_message(self) -> String {
        self.message
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
/// kind supports the operation (`ChannelKind::supports`). Every failure that leaves
/// here, before or during the body, has the channel's keys redacted from its message.
pub async fn send(
    client: &http::HttpClient,
    channel: &Arc<Channel>,
    key: Option<&str>,
    operation: Operation,
    body: Bytes,
    deadlines: Deadlines,
) -> Result<UpstreamResponse, UpstreamFailure> {
    let sent = match channel.kind {
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
    };
    match sent {
        Ok(response) if !channel.keys.is_empty() => {
            let channel = Arc::clone(channel);
            let body = response
                .body
                .map(move |item| item.map_err(|failure| failure.without_keys(&channel)));
            Ok(UpstreamResponse {
                body: Box::pin(body),
            })
        }
        Ok(response) => Ok(response),
        Err(failure) => Err(failure.without_keys(channel)),
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
