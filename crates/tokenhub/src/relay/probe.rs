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

/// What a probe found. With several keys, every key is tested: the top-level fields
/// are those of the first failing key (or of the first key when all pass).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ProbeResult {
    pub ok: bool,
    pub model: String,
    /// The id the upstream was asked for (the channel's `model_map` of `model`).
    pub upstream_model: String,
    /// The upstream does not serve `upstream_model` (unknown or retired id): the
    /// mapping needs changing, not the key.
    pub model_rejected: bool,
    pub latency_ms: u64,
    /// The upstream's HTTP status when it answered with an error.
    pub status: Option<u16>,
    pub error: Option<String>,
    /// One result per key, in the channel's order (empty for a channel without keys).
    pub keys: Vec<KeyProbe>,
}

/// One key's test.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct KeyProbe {
    pub index: usize,
    pub masked: String,
    pub ok: bool,
    pub latency_ms: u64,
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

/// The status an upstream's "no such model" becomes (dialects map their own codes to it,
/// e.g. Zhipu 1211, DeepSeek's "Model Not Exist").
pub const NOT_SERVED: u16 = 404;

/// "ping" for one output token: the cheapest request that proves a model is served.
pub fn ping_body(upstream_model: &str) -> Bytes {
    Bytes::from(
        json!({
            "model": upstream_model,
            "messages": [{"role": "user", "content": "ping"}],
            "max_tokens": 1,
        })
        .to_string(),
    )
}

/// Sends a ping and reads the whole answer.
pub async fn ping(
    client: &crate::providers::http::HttpClient,
    channel: &std::sync::Arc<crate::catalog::Channel>,
    secret: Option<&str>,
    body: Bytes,
    deadlines: crate::providers::Deadlines,
) -> Result<(), UpstreamFailure> {
    let response =
        providers::send(client, channel, secret, Operation::Chat, body, deadlines).await?;
    let mut body = response.body;
    while let Some(chunk) = body.next().await {
        chunk?;
    }
    Ok(())
}

/// Says which mapping is at fault, with the upstream's own words.
pub fn not_served_message(public: &str, upstream: &str, upstream_message: &str) -> String {
    format!(
        "the upstream does not serve model '{upstream}' (public name '{public}'; unknown or retired id, change the channel's model_map): {upstream_message}"
    )
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
        let upstream_model = channel.upstream_model(&model).to_string();
        let body = ping_body(&upstream_model);
        let count = channel.keys.len().max(1);
        let mut keys = Vec::with_capacity(channel.keys.len());
        for index in 0..count {
            let key = channel.keys.get(index);
            let mut found = self.probe_key(&channel, index, key, body.clone()).await;
            if found.status == Some(NOT_SERVED) {
                found.error = found
                    .error
                    .map(|message| not_served_message(&model, &upstream_model, &message));
            }
            keys.push(KeyProbe {
                index,
                masked: key.map(|k| k.masked.clone()).unwrap_or_default(),
                ..found
            });
        }
        let shown = keys
            .iter()
            .find(|k| !k.ok)
            .or(keys.first())
            .cloned()
            .ok_or(ProbeError::NotUsable(channel_id))?;
        if channel.keys.is_empty() {
            keys.clear();
        }
        Ok(ProbeResult {
            ok: shown.ok,
            model_rejected: shown.status == Some(NOT_SERVED),
            model,
            upstream_model,
            latency_ms: shown.latency_ms,
            status: shown.status,
            error: shown.error,
            keys,
        })
    }

    /// One timed request with one key, counted in that key's health.
    async fn probe_key(
        &self,
        channel: &std::sync::Arc<crate::catalog::Channel>,
        index: usize,
        key: Option<&crate::catalog::UpstreamKey>,
        body: Bytes,
    ) -> KeyProbe {
        let key_id = key.map_or(super::health::NO_KEY, |k| k.id);
        let deadlines = crate::providers::Deadlines {
            first_byte: channel
                .timeouts
                .first_token
                .unwrap_or(self.policy.deadlines.first_byte),
        };
        let client = self.clients.for_connect(channel.timeouts.connect);
        let started = Instant::now();
        let secret = key.map(|k| k.secret.as_str());
        let outcome = ping(&client, channel, secret, body, deadlines).await;
        let latency = started.elapsed();
        let latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        let probe = KeyProbe {
            index,
            masked: String::new(),
            ok: true,
            latency_ms,
            status: None,
            error: None,
        };
        match outcome {
            Ok(()) => {
                self.health.succeeded(channel.id, index, key_id, latency);
                probe
            }
            Err(failure) => {
                self.health
                    .failed(channel.id, index, key_id, &failure, Instant::now())
                    .await;
                KeyProbe {
                    ok: false,
                    status: match failure.kind {
                        FailureKind::Status(status) => Some(status),
                        _ => None,
                    },
                    error: Some(failure.into_message()),
                    ..probe
                }
            }
        }
    }
}
