//! The channel test action: one tiny chat request to one channel, outside the pipeline
//! (no key, no reservation, no usage record), timed, and counted in the channel's health
//! so that a passing test closes an open circuit.

use std::time::Instant;

use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::json;

use super::Relay;
use crate::protocol::openai::operation::Operation;
use crate::providers::{self, FailureKind, UpstreamFailure};

/// What a probe found.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ProbeResult {
    pub ok: bool,
    pub model: String,
    pub latency_ms: u64,
    /// The upstream's HTTP status when it answered with an error.
    pub status: Option<u16>,
    pub error: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProbeError {
    #[error("channel {0} is not usable: it is disabled, unknown, or has no API key")]
    NotUsable(i64),
    #[error("channel {0} serves no chat model to test with")]
    NoModel(i64),
}

impl Relay {
    /// Sends "ping" (one output token) to the channel's first model, or to `model`.
    pub async fn probe_channel(
        &self,
        channel_id: i64,
        model: Option<&str>,
    ) -> Result<ProbeResult, ProbeError> {
        let catalog = self.catalog.load_full();
        let channel = catalog
            .channel(channel_id)
            .ok_or(ProbeError::NotUsable(channel_id))?;
        let model = match model {
            Some(model) => model.to_string(),
            None => catalog
                .models_of(channel_id)
                .into_iter()
                .next()
                .ok_or(ProbeError::NoModel(channel_id))?,
        };
        let body = json!({
            "model": channel.upstream_model(&model),
            "messages": [{"role": "user", "content": "ping"}],
            "max_tokens": 1,
        });
        let started = Instant::now();
        let outcome = async {
            let response = providers::send(
                &self.http,
                &channel,
                Operation::Chat,
                Bytes::from(body.to_string()),
                self.policy.deadlines,
            )
            .await?;
            let mut body = response.body;
            while let Some(chunk) = body.next().await {
                chunk?;
            }
            Ok::<(), UpstreamFailure>(())
        }
        .await;
        let latency = started.elapsed();
        let latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        Ok(match outcome {
            Ok(()) => {
                self.health.succeeded(channel.id, latency);
                ProbeResult {
                    ok: true,
                    model,
                    latency_ms,
                    status: None,
                    error: None,
                }
            }
            Err(failure) => {
                self.health.failed(channel.id, &failure, Instant::now());
                let status = match failure.kind {
                    FailureKind::Status(status) => Some(status),
                    _ => None,
                };
                ProbeResult {
                    ok: false,
                    model,
                    latency_ms,
                    status,
                    error: Some(failure.message),
                }
            }
        })
    }
}
